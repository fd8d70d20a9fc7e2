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

impl PgServer {
    fn start() -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match PostgresStore::connect(&self.url).await {
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
