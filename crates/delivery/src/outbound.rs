//! Where delivery may connect. URLs are typed by admins (a webhook, an API
//! host), so without a policy a setting could make the server reach its
//! own loopback, the private network or a cloud metadata address. Those
//! are refused unless the operator allows them (`SWITCHYARD_OUTBOUND_ALLOW`:
//! CIDRs or host names, comma-separated). Names are checked after they
//! resolve, by the HTTP client's own resolver, so a name cannot resolve to
//! a refused address between check and connect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The operator's exceptions to the outbound policy.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl Allow {
    /// Parses `127.0.0.1/32, 10.0.0.0/8, hooks.internal` (a bare address is
    /// one host's net). Refuses what is neither a CIDR, an address nor a
    /// host name.
    pub fn parse(list: &str) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                allow.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "`{item}` in SWITCHYARD_OUTBOUND_ALLOW is not a CIDR, an address or a host name"
                ));
            }
        }
        Ok(allow)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Whether delivery may connect to `ip` (for the host `host`).
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip) || self.allows_ip(ip) || self.allows_host(host)
    }
}

/// Whether `ip` is an ordinary public address: not loopback, private,
/// link-local (cloud metadata lives there), shared, unspecified, multicast
/// or documentation space, in IPv4 or IPv6 (IPv4-mapped addresses count as
/// their IPv4 address).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Why a URL may not be reached, before any connection: a literal address
/// the policy refuses (names are checked by [`Resolver`] as they resolve).
pub fn check_url(allow: &Allow, url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an http or https URL"));
    }
    let host = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(format!("`{url}` has no host")),
    };
    if let Some(ip) = host
        && !allow.permits(&ip.to_string(), ip)
    {
        return Err(refused(&ip.to_string()));
    }
    Ok(())
}

fn refused(host: &str) -> String {
    format!(
        "{host} is a loopback, private or link-local address, which delivery may not reach \
         unless SWITCHYARD_OUTBOUND_ALLOW lists it"
    )
}

/// The HTTP client's resolver: the system's, with refused addresses
/// removed; a name left with none fails to resolve, naming the policy.
pub struct Resolver {
    pub allow: Arc<Allow>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow.permits(&host, a.ip()))
                .collect();
            if found.is_empty() {
                return Err(refused(&host).into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_are_refused() {
        let allow = Allow::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
        ] {
            assert!(check_url(&allow, url).is_err(), "{url}");
        }
        for url in [
            "https://api.mixpanel.com/import",
            "http://93.184.215.14/",
            "https://[2606:4700::1111]/",
        ] {
            assert_eq!(check_url(&allow, url), Ok(()), "{url}");
        }
        assert!(check_url(&allow, "ftp://example.com/").is_err());
        assert!(check_url(&allow, "not a url").is_err());
    }

    #[test]
    fn the_operator_allows_nets_addresses_and_hosts() {
        let allow = Allow::parse("127.0.0.1, 10.0.0.0/8 ,hooks.internal").unwrap();
        assert_eq!(check_url(&allow, "http://127.0.0.1:9/"), Ok(()));
        assert_eq!(check_url(&allow, "http://10.9.9.9/"), Ok(()));
        assert!(check_url(&allow, "http://127.0.0.2/").is_err());
        assert!(allow.permits("hooks.internal", "192.168.1.1".parse().unwrap()));
        assert!(!allow.permits("other.internal", "192.168.1.1".parse().unwrap()));
        assert!(Allow::parse("10.0.0.0/99").is_err());
        assert!(Allow::parse("bad host!").is_err());
    }
}
