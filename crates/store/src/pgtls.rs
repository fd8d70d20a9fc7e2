//! Postgres connections with TLS as the URL's `sslmode` asks, read the way
//! libpq reads it, so a URL that works with `psql` works here:
//!
//! - `disable`: no TLS;
//! - `prefer` (the default): TLS when the server offers it, certificate not
//!   checked;
//! - `require`: TLS or no connection; the certificate is checked against
//!   `sslrootcert` when one is given (as libpq does), not otherwise;
//! - `verify-ca`: the certificate must chain to `sslrootcert` (or, without
//!   it, to the Mozilla roots); the host name is not compared;
//! - `verify-full`: as `verify-ca`, and the certificate must name the host.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

use crate::{Result, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Connects to `url` and runs the connection on the runtime; the returned
/// client ends the connection when dropped.
pub(crate) async fn connect(url: &str) -> Result<Client> {
    let (config, mode, root) = parse(url)?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(mode, root.as_deref())?);
    let (client, conn) = config.connect(tls).await.map_err(|e| {
        // "error performing TLS handshake" alone does not say why.
        match std::error::Error::source(&e) {
            Some(cause) => bad(format!("{e}: {cause}")),
            None => e.into(),
        }
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

fn bad(message: String) -> StoreError {
    StoreError::PostgresConnect(message)
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL (tokio-postgres
/// knows neither `verify-*` nor `sslrootcert`) and parses the rest.
fn parse(url: &str) -> Result<(Config, Mode, Option<String>)> {
    let mut mode = Mode::Prefer;
    let mut root = None;
    let rest = match url.split_once('?') {
        Some((base, query))
            if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match key {
                    "sslmode" => {
                        mode = match value {
                            "disable" => Mode::Disable,
                            "allow" | "prefer" => Mode::Prefer,
                            "require" => Mode::Require,
                            "verify-ca" => Mode::VerifyCa,
                            "verify-full" => Mode::VerifyFull,
                            other => {
                                return Err(bad(format!(
                                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                                )));
                            }
                        }
                    }
                    "sslrootcert" => {
                        root = Some(
                            percent_encoding::percent_decode_str(value)
                                .decode_utf8_lossy()
                                .into_owned(),
                        )
                    }
                    _ => kept.push(pair),
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                [base, "?", &kept.join("&")].concat()
            }
        }
        _ => url.to_owned(),
    };
    let mut config: Config = rest.parse()?;
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    Ok((config, mode, root))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: Mode, root: Option<&str>) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS set-up: {e}")))?;
    let roots = || -> Result<Arc<RootCertStore>> {
        let mut store = RootCertStore::empty();
        match root {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                if certs.is_empty() {
                    return Err(bad(format!("sslrootcert {path}: no certificate in it")));
                }
                for cert in certs {
                    store
                        .add(cert)
                        .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                }
            }
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(Arc::new(store))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
        (Mode::Disable | Mode::Prefer, _) | (Mode::Require, None) => Arc::new(Lenient {
            chain: None,
            provider: provider(),
        }),
        (Mode::Require | Mode::VerifyCa, _) => Arc::new(Lenient {
            chain: Some(webpki(roots()?)?),
            provider: provider(),
        }),
        (Mode::VerifyFull, _) => webpki(roots()?)?,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn webpki(roots: Arc<RootCertStore>) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| bad(format!("TLS set-up: {e}")))
}

/// The modes short of `verify-full`: without a chain to check (`prefer`,
/// `require` with no root), the certificate is taken as it comes; with one
/// (`verify-ca`), the chain is checked and the name in it is not. The
/// handshake's signatures are checked either way.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_are_taken_out_of_the_url() {
        let (config, mode, root) =
            parse("postgres://u@db:5433/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=sy").unwrap();
        assert_eq!(mode, Mode::VerifyFull);
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("sy"));
        assert_eq!(config.get_ports(), &[5433]);
        let (config, mode, root) = parse("postgres://u@db/app").unwrap();
        assert_eq!(
            (mode, root, config.get_ssl_mode()),
            (Mode::Prefer, None, SslMode::Prefer)
        );
        let (config, mode, _) = parse("postgres://u@db/app?sslmode=disable").unwrap();
        assert_eq!(
            (mode, config.get_ssl_mode()),
            (Mode::Disable, SslMode::Disable)
        );
    }

    #[test]
    fn a_wrong_sslmode_or_root_file_says_what_is_wrong() {
        let err = parse("postgres://u@db/app?sslmode=always")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("sslmode `always` is not one of"), "{err}");
        let err = client_config(Mode::VerifyFull, Some("/nonexistent/ca.pem"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
