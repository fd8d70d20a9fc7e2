//! The `switchyard` binary as a user runs it: first start, restart,
//! settings from the environment, bad settings.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    lines: Vec<String>,
    origin: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn switchyard(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.env_remove("SWITCHYARD_ADMIN_TOKEN")
        .env_remove("SWITCHYARD_ADDR")
        .env_remove("SWITCHYARD_DATA")
        .envs(envs.iter().copied());
    cmd
}

/// Starts `switchyard serve` and reads its start-up message up to the
/// line naming the demo page.
fn serve(envs: &[(&str, &str)]) -> Running {
    let mut child = switchyard(envs)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "exited early: {lines:?}"
        );
        let done = line.starts_with("Demo page:");
        lines.push(line.trim_end().to_string());
        if done || Instant::now() > deadline {
            break;
        }
    }
    // Keep reading, as a terminal would, so the server never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let origin = lines[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    Running {
        child,
        lines,
        origin,
    }
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// The rest of the first line that starts with `label`.
fn after<'a>(lines: &'a [String], label: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
}

#[test]
fn first_start_prints_token_write_key_and_snippet_and_restart_keeps_them() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data_dir),
    ];
    let (token, write_key) = {
        let first = serve(&env);
        let token = after(&first.lines, "Admin token:").unwrap().to_string();
        let write_key = after(&first.lines, "write key:").unwrap().to_string();
        assert_eq!(token.len(), 40, "{:?}", first.lines);
        assert_eq!(write_key.len(), 32);
        assert!(
            first
                .lines
                .iter()
                .any(|l| l.contains(&["analytics.load(\"", &write_key, "\")"].concat()))
        );
        assert!(data.path().join("switchyard.sqlite").exists());
        let (status, body) = get(&[&first.origin, "/api/sources"].concat(), Some(&token));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&write_key));
        let (status, body) = get(&[&first.origin, "/demo"].concat(), None);
        assert_eq!(status, 200);
        assert!(body.contains(&write_key));
        (token, write_key)
    };
    let second = serve(&env);
    assert!(
        after(&second.lines, "Admin token:").is_none(),
        "token printed again: {:?}",
        second.lines
    );
    assert!(
        after(&second.lines, "write key:").is_none(),
        "a second demo source: {:?}",
        second.lines
    );
    let (status, body) = get(&[&second.origin, "/api/sources"].concat(), Some(&token));
    assert_eq!(status, 200);
    assert_eq!(body.matches("\"write_key\"").count(), 1);
    assert!(body.contains(&write_key));
}

#[test]
fn admin_token_from_the_environment_wins() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_ADMIN_TOKEN", "my-own-token"),
    ];
    let running = serve(&env);
    assert!(after(&running.lines, "Admin token:").is_none());
    assert_eq!(
        get(
            &[&running.origin, "/api/sources"].concat(),
            Some("my-own-token")
        )
        .0,
        200
    );
    assert_eq!(
        get(&[&running.origin, "/api/sources"].concat(), None).0,
        401
    );
}

#[test]
fn bad_settings_are_clear_errors() {
    for (args, want) in [
        (
            vec!["serve", "--addr", "not-an-address"],
            "invalid value 'not-an-address' for '--addr",
        ),
        (vec!["serve", "--loader-max-age=-5"], "--loader-max-age"),
        (vec!["launch"], "unrecognized subcommand 'launch'"),
    ] {
        let out = switchyard(&[]).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = switchyard(&[
        ("SWITCHYARD_DATA", file.path().to_str().unwrap()),
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
    ])
    .arg("serve")
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create data directory"));
}
