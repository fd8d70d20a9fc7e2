//! The Postgres backend passes the same suite as SQLite, against a real
//! Postgres server this test starts in a temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_store::PostgresStore;

/// A throwaway Postgres cluster: `initdb`, `postgres` on a free port,
/// removed when dropped.
struct PgServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!(
                "no Postgres in {}: {e}; run `cargo xtask test`, which installs it",
                root.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.last().unwrap().join("bin").join(name)
}

/// Postgres refuses to run as root: run its programs as `postgres` then.
fn as_postgres(program: PathBuf) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A certificate authority and a server certificate it signed for the
/// given names, written where a test Postgres reads them.
struct Tls {
    ca: String,
    cert: String,
    key: String,
}

impl Tls {
    fn for_names(names: &[&str]) -> Tls {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "switchyard test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        Tls {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

impl PgServer {
    fn start() -> PgServer {
        PgServer::start_with(None)
    }

    /// A server that offers TLS with `tls`'s certificate (and still takes
    /// plain connections, as a default Postgres with `ssl = on` does).
    fn start_with(tls: Option<&Tls>) -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut ssl = Vec::new();
        if let Some(tls) = tls {
            use std::os::unix::fs::PermissionsExt;
            let cert = dir.path().join("server.crt");
            let key = dir.path().join("server.key");
            std::fs::write(&cert, &tls.cert).unwrap();
            std::fs::write(&key, &tls.key).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            ssl = vec![
                "-c".to_owned(),
                "ssl=on".to_owned(),
                "-c".to_owned(),
                format!("ssl_cert_file={}", cert.display()),
                "-c".to_owned(),
                format!("ssl_key_file={}", key.display()),
            ];
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let out = as_postgres(pg_bin("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = as_postgres(pg_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-k"])
            .arg(dir.path())
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .args(&ssl)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = [
            "postgres://postgres@127.0.0.1:",
            &port.to_string(),
            "/postgres",
        ]
        .concat();
        PgServer {
            child,
            url,
            _dir: dir,
        }
    }

    async fn store(&self) -> PostgresStore {
        self.store_at(&self.url).await
    }

    /// Connects with `url` once the server is up (it may still be starting).
    async fn store_at(&self, url: &str) -> PostgresStore {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match PostgresStore::connect(url).await {
                Ok(store) => return store,
                Err(e) if Instant::now() > deadline => panic!("Postgres did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGTERM (a smart shutdown) through kill(1): runuser passes it on.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn passes_the_config_store_suite() {
    let server = PgServer::start();
    let store = server.store().await;
    common::config_store(&store).await;
    // Migrations run once: connecting again finds the schema in place.
    let again = server.store().await;
    common::config_store(&again).await;
    common::delivery_store(&store, &store).await;
}

#[tokio::test]
async fn a_wrong_url_is_a_clear_error() {
    let err = PostgresStore::connect("postgres://nobody@127.0.0.1:1/none")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("postgres error"), "{err}");
    let err = PostgresStore::connect("not a url").await.err().unwrap();
    assert!(err.to_string().contains("postgres error"), "{err}");
}

/// What connecting with `url` is refused with.
async fn refusal(url: &str) -> String {
    PostgresStore::connect(url).await.err().unwrap().to_string()
}

/// Whether the server sees this store's connection as encrypted, read from
/// Postgres itself (`pg_stat_ssl`), not from the client's settings.
async fn encrypted(url: &str) -> bool {
    let store = PostgresStore::connect(url).await.unwrap();
    store.connection_is_encrypted().await.unwrap()
}

#[tokio::test]
async fn connects_with_tls_as_the_sslmode_asks() {
    let tls = Tls::for_names(&["localhost"]);
    let server = PgServer::start_with(Some(&tls));
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &tls.ca).unwrap();
    let ca = ca.path().display().to_string();
    // Up and migrated, over TLS, then the configuration suite over TLS.
    let full =
        server.url.replace("127.0.0.1", "localhost") + "?sslmode=verify-full&sslrootcert=" + &ca;
    let store = server.store_at(&full).await;
    assert!(store.connection_is_encrypted().await.unwrap());
    common::config_store(&store).await;

    assert!(encrypted(&(server.url.clone() + "?sslmode=require")).await);
    assert!(
        encrypted(&server.url).await,
        "prefer, the default, takes TLS when offered"
    );
    assert!(!encrypted(&(server.url.clone() + "?sslmode=disable")).await);
    // The certificate names localhost, not 127.0.0.1: the chain is good,
    // the name is not.
    let by_ip = server.url.clone() + "?sslrootcert=" + &ca;
    assert!(encrypted(&(by_ip.clone() + "&sslmode=verify-ca")).await);
    let err = refusal(&(by_ip + "&sslmode=verify-full")).await;
    assert!(err.contains("certificate"), "{err}");

    // A certificate from another authority is refused when verifying.
    let other = Tls::for_names(&["localhost"]);
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), &other.ca).unwrap();
    let err = refusal(
        &(server.url.replace("127.0.0.1", "localhost")
            + "?sslmode=verify-full&sslrootcert="
            + &other_ca.path().display().to_string()),
    )
    .await;
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn tls_required_of_a_server_without_it_is_refused() {
    let server = PgServer::start();
    let store = server.store().await;
    assert!(!store.connection_is_encrypted().await.unwrap());
    let err = refusal(&(server.url.clone() + "?sslmode=require")).await;
    assert!(err.starts_with("postgres error"), "{err}");
    let err = refusal(&(server.url.clone() + "?sslmode=sometimes")).await;
    assert!(err.contains("sslmode `sometimes` is not one of"), "{err}");
}
