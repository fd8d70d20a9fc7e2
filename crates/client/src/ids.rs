//! Identifier formats, pure so they are tested natively.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Formats 16 random bytes as a version 4 UUID (RFC 9562): the version
/// and variant bits are set here.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The value of cookie `name` in a `document.cookie` string, if set.
pub fn cookie<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then_some(v.trim())
    })
}

/// An id as Segment's libraries stored it: plain, or JSON-encoded
/// (`"abc"`), either of them URI-encoded (`%22abc%22`). `None` for empty.
pub fn stored_id(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some(inner) = s.strip_prefix("%22").and_then(|r| r.strip_suffix("%22")) {
        s = inner;
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        s = inner;
    }
    (!s.is_empty() && s != "null" && s != "undefined").then(|| s.to_string())
}

/// A number in decimal, without `core::fmt` (which would weigh on the
/// wasm module).
pub fn decimal(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Whether `host` is an IP address (v4 dotted digits, or v6).
pub fn is_ip(host: &str) -> bool {
    host.contains(':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Decodes a URL query (`?a=1&b=x%20y`) into pairs, `+` as a space.
pub fn query_pairs(search: &str) -> Vec<(String, String)> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_sets_version_and_variant() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
            0xde, 0xf0,
        ]);
        assert_eq!(id, "12345678-9abc-4ef0-9234-56789abcdef0");
    }

    #[test]
    fn cookie_lookup() {
        let jar = "a=1; ajs_anonymous_id=abc; ajs_user_id=%22u1%22";
        assert_eq!(cookie(jar, "ajs_anonymous_id"), Some("abc"));
        assert_eq!(cookie(jar, "ajs_user_id"), Some("%22u1%22"));
        assert_eq!(cookie(jar, "ajs"), None);
        assert_eq!(cookie("", "a"), None);
        assert_eq!(cookie("novalue; a=2", "a"), Some("2"));
    }

    #[test]
    fn decimals_and_hosts() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(429), "429");
        assert_eq!(decimal(u64::MAX), "18446744073709551615");
        assert!(is_ip("127.0.0.1"));
        assert!(is_ip("::1"));
        assert!(!is_ip("shop.example.com"));
        assert!(!is_ip("localhost"));
    }

    #[test]
    fn query_strings_decode() {
        let pairs = query_pairs(
            "?utm_source=news&ajs_prop_a=x%20y+z&empty=&flag&bad=%zz&trail=%4&u=%C3%A9",
        );
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("utm_source"), Some("news"));
        assert_eq!(get("ajs_prop_a"), Some("x y z"));
        assert_eq!(get("empty"), Some(""));
        assert_eq!(get("flag"), Some(""));
        assert_eq!(get("bad"), Some("%zz"));
        assert_eq!(get("trail"), Some("%4"));
        assert_eq!(get("u"), Some("é"));
        assert!(query_pairs("").is_empty());
    }

    #[test]
    fn stored_ids_in_every_encoding_segment_used() {
        for (raw, want) in [
            ("abc", Some("abc")),
            ("\"abc\"", Some("abc")),
            ("%22abc%22", Some("abc")),
            ("", None),
            ("\"\"", None),
            ("null", None),
            ("undefined", None),
        ] {
            assert_eq!(stored_id(raw).as_deref(), want, "{raw}");
        }
    }
}
