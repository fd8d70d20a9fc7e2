//! The `switchyard` binary as a user runs it: first start, restart,
//! settings from the environment, bad settings; and the admin commands
//! (`catalog`, `sources`, `connections`) as a script runs them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
        .env_remove("SWITCHYARD_DATABASE_URL")
        .env_remove("SWITCHYARD_SECRET_KEY")
        .env_remove("SWITCHYARD_SECRET_KEY_FILE")
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied());
    cmd
}

/// Starts `switchyard serve` and reads its start-up message up to the
/// line naming the demo page.
fn serve(envs: &[(&str, &str)]) -> Running {
    serve_logging(envs, None)
}

/// [`serve`], all it prints after the start-up message (its log), and its
/// stderr, appended to the file `log`.
fn serve_logging(envs: &[(&str, &str)], log: Option<&Path>) -> Running {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    };
    // The demo source unless the test says otherwise: most read its
    // write key from the start-up message.
    let demo = envs.iter().all(|(k, _)| *k != "SWITCHYARD_DEMO");
    let mut child = switchyard(envs)
        .envs(demo.then_some(("SWITCHYARD_DEMO", "true")))
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(log.map_or(Stdio::null(), |p| open(p).into()))
        .spawn()
        .unwrap();
    // Everything it prints is read, as a terminal would, so the server
    // never writes to a closed pipe: the start-up message comes here, the
    // rest goes to the log.
    let stdout = child.stdout.take().unwrap();
    let mut file = log.map(open);
    let (said, heard) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut started = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if started {
                if let Some(file) = &mut file {
                    let _ = writeln!(file, "{line}");
                }
            } else {
                started = line.starts_with("Events:");
                let _ = said.send(line);
            }
        }
    });
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.last().is_some_and(|l| l.starts_with("Events:")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match heard.recv_timeout(left) {
            Ok(line) => lines.push(line.trim_end().to_string()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("exited early: {lines:?}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("no start-up message within 30 s: {lines:?}")
            }
        }
    }
    let origin = lines
        .iter()
        .find(|l| l.contains("is serving at"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap()
        .to_string();
    Running {
        child,
        lines,
        origin,
    }
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    block_on(async {
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

// ---------------------------------------------------------------------------
// Admin commands, as a script runs them.

/// What a secret setting reads as once saved.
const MASK: &str = "••••••••";
/// A well-formed Mixpanel project token (32 hexadecimal characters).
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const OTHER_TOKEN: &str = "FEDCBA9876543210FEDCBA9876543210";

/// The exit status, stdout and stderr of a finished command.
fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().expect("killed by a signal"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `switchyard ARGS --data DATA` (`catalog` takes no data directory).
fn run(data: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = switchyard(&[]);
    cmd.args(args);
    if args.first() != Some(&"catalog") {
        cmd.arg("--data").arg(data);
    }
    outcome(&mut cmd)
}

/// Runs `ARGS --json`, which must succeed, and parses what it printed.
fn json(data: &Path, args: &[&str]) -> Value {
    let (code, out, err) = run(data, &[args, &["--json"]].concat());
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// Runs `ARGS`, which must fail with exit status `code`, print nothing on
/// stdout and `error: ...` on stderr; returns stderr.
fn fails(data: &Path, args: &[&str], code: i32) -> String {
    let (got, out, err) = run(data, args);
    assert_eq!(got, code, "{args:?}: stdout {out:?}, stderr {err:?}");
    assert_eq!(out, "", "{args:?} failed but printed to stdout");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

/// A string field of a JSON object.
fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
        .to_string()
}

/// The codes of a connection's warnings.
fn warning_codes(connection: &Value) -> Vec<String> {
    connection["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array in {connection}"))
        .iter()
        .map(|w| text(w, "code"))
        .collect()
}

/// Creates a source and returns its id.
fn new_source(data: &Path, name: &str) -> String {
    text(&json(data, &["sources", "create", name]), "id")
}

/// Adds a valid device-mode Mixpanel connection and returns its id.
fn new_mixpanel(data: &Path, source: &str) -> String {
    let token = ["token=", TOKEN].concat();
    let added = json(
        data,
        &[
            "connections",
            "add",
            source,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            &token,
        ],
    );
    text(&added, "id")
}

/// Adds a webhook connection to `url`, with more `add` arguments; its id.
fn new_webhook(data: &Path, source: &str, url: &str, more: &[&str]) -> String {
    let url = ["url=", url].concat();
    let mut args = vec!["connections", "add", source, "webhook", "--set", &url];
    args.extend_from_slice(more);
    text(&json(data, &args), "id")
}

#[test]
fn sources_round_trip_as_a_script_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_eq!(json(data, &["sources", "list"]), serde_json::json!([]));

    let created = json(data, &["sources", "create", "Marketing site"]);
    let id = text(&created, "id");
    let write_key = text(&created, "write_key");
    assert_eq!(text(&created, "name"), "Marketing site");
    assert_eq!(write_key.len(), 32, "{created}");
    assert_eq!(created["connections"], 0);
    let revision = created["revision"].as_i64().unwrap();

    let listed = json(data, &["sources", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(text(&listed[0], "id"), id);
    assert_eq!(text(&listed[0], "write_key"), write_key);

    let renamed = json(data, &["sources", "rename", &id, "Shop"]);
    assert_eq!(text(&renamed, "id"), id);
    assert_eq!(text(&renamed, "name"), "Shop");
    assert_eq!(text(&renamed, "write_key"), write_key);
    assert!(
        renamed["revision"].as_i64().unwrap() > revision,
        "revision not raised: {created} -> {renamed}"
    );

    let rotated = json(data, &["sources", "rotate-key", &id]);
    let new_key = text(&rotated, "write_key");
    assert_eq!(text(&rotated, "id"), id);
    assert_ne!(new_key, write_key);
    assert_eq!(new_key.len(), 32);

    let shown = json(data, &["sources", "show", &id]);
    assert_eq!(text(&shown, "name"), "Shop");
    assert_eq!(text(&shown, "write_key"), new_key);

    assert_eq!(
        json(data, &["sources", "delete", &id]),
        serde_json::json!({ "deleted": id })
    );
    assert_eq!(json(data, &["sources", "list"]), serde_json::json!([]));
    let err = fails(data, &["sources", "delete", &id], 1);
    assert!(err.contains("no source") && err.contains(&id), "{err}");
    let err = fails(data, &["sources", "show", &id], 1);
    assert!(err.contains(&id), "{err}");
}

#[test]
fn deleting_a_source_deletes_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let connection = new_mixpanel(data, &source);
    assert_eq!(json(data, &["sources", "show", &source])["connections"], 1);
    json(data, &["sources", "delete", &source]);
    let err = fails(data, &["connections", "show", &connection], 1);
    assert!(err.contains(&connection), "{err}");
}

#[test]
fn connections_add_set_toggle_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");

    let token = ["token=", TOKEN].concat();
    let added = json(
        data,
        &[
            "connections",
            "add",
            &source,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            &token,
            "--enable",
        ],
    );
    let id = text(&added, "id");
    assert_eq!(added["enabled"], true, "{added}");
    assert_eq!(added["mode"], "device");
    assert_eq!(added["destination"], "mixpanel");
    assert_eq!(added["destination_name"], "Mixpanel");
    assert_eq!(text(&added, "source_id"), source);
    assert_eq!(added["settings"]["token"], TOKEN);
    // Defaults are filled in.
    assert_eq!(added["settings"]["apiHost"], "https://api.mixpanel.com");
    // Mixpanel's device mode has its adapter: no warning about it.
    assert!(
        !warning_codes(&added).contains(&"mode_unavailable".to_string()),
        "{added}"
    );

    let other = ["token=", OTHER_TOKEN].concat();
    let changed = json(data, &["connections", "set", &id, "--set", &other]);
    assert_eq!(changed["settings"]["token"], OTHER_TOKEN);
    assert_eq!(changed["settings"]["apiHost"], "https://api.mixpanel.com");
    assert_eq!(changed["enabled"], true, "set must not toggle: {changed}");
    assert_eq!(changed["mode"], "device");
    assert_eq!(
        json(data, &["connections", "show", &id])["settings"]["token"],
        OTHER_TOKEN
    );

    assert_eq!(
        json(data, &["connections", "disable", &id])["enabled"],
        false
    );
    assert_eq!(json(data, &["connections", "show", &id])["enabled"], false);
    assert_eq!(json(data, &["connections", "enable", &id])["enabled"], true);
    assert_eq!(json(data, &["connections", "show", &id])["enabled"], true);

    let listed = json(data, &["connections", "list", &source]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(text(&listed[0], "id"), id);
    assert_eq!(listed[0]["enabled"], true);
    assert_eq!(listed[0]["settings"]["token"], OTHER_TOKEN);
    assert_eq!(json(data, &["sources", "show", &source])["connections"], 1);

    assert_eq!(
        json(data, &["connections", "remove", &id]),
        serde_json::json!({ "deleted": id })
    );
    assert_eq!(
        json(data, &["connections", "list", &source]),
        serde_json::json!([])
    );
    let err = fails(data, &["connections", "remove", &id], 1);
    assert!(err.contains("no connection") && err.contains(&id), "{err}");
}

#[test]
fn secret_settings_are_never_printed() {
    const MP_SECRET: &str = "mixpanel-api-secret-7f3a";
    const HOOK_SECRET: &str = "webhook-shared-secret-91c2";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let mixpanel = new_mixpanel(data, &source);
    // Everything the commands print, JSON and human, to look for secrets in.
    let mut printed = Vec::new();

    // Mixpanel's API secret is a cloud-mode setting.
    let secret = ["apiSecret=", MP_SECRET].concat();
    let cloud = json(
        data,
        &[
            "connections",
            "set",
            &mixpanel,
            "--mode",
            "cloud",
            "--set",
            &secret,
        ],
    );
    assert_eq!(cloud["mode"], "cloud");
    assert_eq!(cloud["settings"]["apiSecret"], MASK, "{cloud}");
    assert_eq!(cloud["settings"]["token"], TOKEN, "kept across modes");
    assert!(
        cloud["settings"].get("scriptUrl").is_none(),
        "device-only setting kept in cloud mode: {cloud}"
    );
    printed.push(cloud.to_string());

    // Changing another setting keeps the saved secret.
    let eu = json(
        data,
        &[
            "connections",
            "set",
            &mixpanel,
            "--set",
            "apiHost=https://api-eu.mixpanel.com",
        ],
    );
    assert_eq!(eu["settings"]["apiHost"], "https://api-eu.mixpanel.com");
    assert_eq!(eu["settings"]["apiSecret"], MASK, "{eu}");
    printed.push(eu.to_string());

    // The webhook's shared secret, added with human output.
    let shared = ["sharedSecret=", HOOK_SECRET].concat();
    let (code, out, err) = run(
        data,
        &[
            "connections",
            "add",
            &source,
            "webhook",
            "--set",
            "url=https://example.com/hook",
            "--set",
            &shared,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Webhook (webhook)"), "{out}");
    assert!(out.contains(&["sharedSecret = ", MASK].concat()), "{out}");
    printed.push(out);

    let hook = json(data, &["connections", "list", &source])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["destination"] == "webhook")
        .map(|c| text(c, "id"))
        .unwrap();
    for args in [
        vec!["connections", "list", &source],
        vec!["connections", "show", &mixpanel],
        vec!["connections", "show", &hook],
        vec!["connections", "disable", &hook],
        vec!["connections", "enable", &hook],
        vec![
            "connections",
            "set",
            &hook,
            "--set",
            "url=https://example.org/in",
        ],
        vec!["sources", "list"],
        vec!["sources", "show", &source],
    ] {
        let (code, out, err) = run(data, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
        printed.push(out);
        let as_json = json(data, &args);
        printed.push(as_json.to_string());
    }
    let hook_now = json(data, &["connections", "show", &hook]);
    assert_eq!(hook_now["settings"]["sharedSecret"], MASK, "{hook_now}");
    assert_eq!(hook_now["settings"]["url"], "https://example.org/in");
    let human = run(data, &["connections", "list", &source]).1;
    assert!(human.contains(&["apiSecret = ", MASK].concat()), "{human}");

    for out in &printed {
        assert!(
            !out.contains(MP_SECRET) && !out.contains(HOOK_SECRET),
            "a secret was printed: {out}"
        );
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let connection = new_mixpanel(data, &source);
    let snapshot = || {
        (
            json(data, &["sources", "list"]),
            json(data, &["connections", "list", &source]),
        )
    };
    let before = snapshot();

    let token = ["token=", TOKEN].concat();
    let mixpanel = ["connections", "add", source.as_str(), "mixpanel"];
    let postgres = [
        "connections",
        "add",
        &source,
        "postgres",
        "--set",
        "host=db.example.com",
        "--set",
        "port=fifty",
        "--set",
        "database=analytics",
        "--set",
        "user=switchyard",
        "--set",
        "password=pw",
    ];
    let uuid = "websiteId=6d2b0a4e-1c3f-4b5a-9e8d-7f6a5b4c3d2e";
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        // Destinations, modes and settings.
        (
            vec!["connections", "add", &source, "no-such-tool", "--enable"],
            1,
            vec!["no destination `no-such-tool`"],
        ),
        (
            [
                &mixpanel[..],
                &["--mode", "device", "--set", "token=not-a-token"],
            ]
            .concat(),
            1,
            vec!["Project token", "expected format"],
        ),
        (
            [&mixpanel[..], &["--mode", "device"]].concat(),
            1,
            vec!["Project token", "required"],
        ),
        (
            vec!["connections", "add", &source, "webhook", "--enable"],
            1,
            vec!["Webhook URL", "required"],
        ),
        (
            [&mixpanel[..], &["--mode", "edge", "--set", &token]].concat(),
            1,
            vec!["unknown mode `edge`", "device, cloud"],
        ),
        (
            [&mixpanel[..], &["--set", &token]].concat(),
            1,
            vec!["mode is required", "device, cloud"],
        ),
        (
            vec![
                "connections",
                "add",
                &source,
                "crisp",
                "--mode",
                "cloud",
                "--set",
                uuid,
            ],
            1,
            vec!["Crisp has no cloud mode", "device"],
        ),
        (
            [&mixpanel[..], &["--mode", "device", "--set", "token"]].concat(),
            1,
            vec!["`token` is not KEY=VALUE"],
        ),
        (
            [
                &mixpanel[..],
                &["--mode", "device", "--set", &token, "--set", "colour=blue"],
            ]
            .concat(),
            1,
            vec!["colour", "not a setting of Mixpanel"],
        ),
        (postgres.to_vec(), 1, vec!["port", "not a number"]),
        // Changing a connection badly.
        (
            vec![
                "connections",
                "set",
                &connection,
                "--set",
                "token=not-a-token",
            ],
            1,
            vec!["Project token", "expected format"],
        ),
        (
            vec!["connections", "set", &connection, "--set", "token="],
            1,
            vec!["Project token", "required"],
        ),
        (
            vec!["connections", "set", &connection, "--mode", "edge"],
            1,
            vec!["unknown mode `edge`"],
        ),
        // Ids that do not exist.
        (
            vec![
                "connections",
                "add",
                "src_missing",
                "mixpanel",
                "--mode",
                "device",
                "--set",
                &token,
            ],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["connections", "list", "src_missing"],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["sources", "show", "src_missing"],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["sources", "rename", "src_missing", "New name"],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["sources", "rotate-key", "src_missing"],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["sources", "delete", "src_missing"],
            1,
            vec!["no source src_missing"],
        ),
        (
            vec!["connections", "show", "con_missing"],
            1,
            vec!["no connection con_missing"],
        ),
        (
            vec!["connections", "set", "con_missing", "--set", &token],
            1,
            vec!["no connection con_missing"],
        ),
        (
            vec!["connections", "enable", "con_missing"],
            1,
            vec!["no connection con_missing"],
        ),
        (
            vec!["connections", "disable", "con_missing"],
            1,
            vec!["no connection con_missing"],
        ),
        (
            vec!["connections", "remove", "con_missing"],
            1,
            vec!["no connection con_missing"],
        ),
        // Names.
        (vec!["sources", "create", ""], 1, vec!["name is required"]),
        (
            vec!["sources", "create", "   "],
            1,
            vec!["name is required"],
        ),
        (
            vec!["sources", "rename", &source, ""],
            1,
            vec!["name is required"],
        ),
        // The catalog.
        (
            vec!["catalog", "--category", "Games"],
            1,
            vec!["unknown category `Games`", "Live Chat"],
        ),
        // Usage errors, from the argument parser.
        (vec!["sources", "create"], 2, vec!["<NAME>"]),
        (
            vec!["connections", "add", &source],
            2,
            vec!["<DESTINATION>"],
        ),
        (vec!["sources", "frobnicate"], 2, vec!["frobnicate"]),
        (vec!["connections", "enable"], 2, vec!["<ID>"]),
    ];
    for (args, code, wants) in &cases {
        let err = fails(data, args, *code);
        for want in wants {
            assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        }
        if *code == 1 {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
        assert!(snapshot() == before, "{args:?} changed the data");
    }
}

#[test]
fn settings_are_typed_by_the_destination_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let added = json(
        data,
        &[
            "connections",
            "add",
            &source,
            "postgres",
            "--set",
            "host=db.example.com",
            "--set",
            "port=5433",
            "--set",
            "database=analytics",
            "--set",
            "user=switchyard",
            "--set",
            "password=pw",
        ],
    );
    assert_eq!(added["mode"], "cloud", "the only mode is chosen");
    assert_eq!(added["enabled"], false, "not enabled without --enable");
    assert!(added["settings"]["port"].is_number(), "{added}");
    assert_eq!(
        added["settings"]["port"].as_u64(),
        Some(5433),
        "a whole number stays an integer"
    );
    assert_eq!(added["settings"]["host"], "db.example.com");
    assert_eq!(added["settings"]["sslmode"], "require");
    assert_eq!(added["settings"]["password"], MASK);
}

#[test]
fn human_output_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let shop = json(data, &["sources", "create", "Shop"]);
    let blog = json(data, &["sources", "create", "Blog"]);
    let (code, out, err) = run(data, &["sources", "list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    for source in [&shop, &blog] {
        let line = out
            .lines()
            .find(|l| l.contains(&text(source, "id")))
            .unwrap_or_else(|| panic!("{source} not listed: {out}"));
        assert!(line.contains(&text(source, "name")), "{line}");
        assert!(line.contains(&text(source, "write_key")), "{line}");
    }

    let shop_id = text(&shop, "id");
    new_mixpanel(data, &shop_id);
    let (code, out, err) = run(data, &["connections", "list", &shop_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Mixpanel (mixpanel)"), "{out}");
    assert!(out.contains(&["token = ", TOKEN].concat()), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    // Postgres's cloud mode is not available yet: the listing says so.
    json(
        data,
        &[
            "connections",
            "add",
            &shop_id,
            "postgres",
            "--mode",
            "cloud",
            "--set",
            "host=db.example",
            "--set",
            "database=analytics",
            "--set",
            "user=switchyard",
            "--set",
            "password=pw",
        ],
    );
    let (code, out, err) = run(data, &["connections", "list", &shop_id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("warning: Cloud mode of Postgres is not available yet"),
        "{out}"
    );

    for category in ["Live Chat", "live chat"] {
        let (code, out, err) = run(data, &["catalog", "--category", category]);
        assert_eq!(code, 0, "{err}");
        let slugs: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(slugs, ["crisp", "intercom"], "{out}");
        assert!(out.contains("Crisp") && out.contains("Intercom"), "{out}");
    }

    let found = json(data, &["catalog", "mixpanel"]);
    let found = found.as_array().expect("a JSON array");
    assert!(!found.is_empty());
    assert_eq!(found[0]["slug"], "mixpanel", "{found:?}");
    assert_eq!(found[0]["name"], "Mixpanel");
}

#[test]
fn data_directory_from_flag_environment_or_default() {
    let flag = tempfile::tempdir().unwrap();
    let env = tempfile::tempdir().unwrap();
    let env_dir = env.path().to_str().unwrap();

    // `--data` wins over SWITCHYARD_DATA.
    let (code, _, err) = outcome(
        switchyard(&[("SWITCHYARD_DATA", env_dir)])
            .args(["sources", "create", "Flagged", "--data"])
            .arg(flag.path()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(flag.path(), &["sources", "list"])[0]["name"],
        "Flagged"
    );
    assert_eq!(
        json(env.path(), &["sources", "list"]),
        serde_json::json!([])
    );

    // SWITCHYARD_DATA alone.
    let (code, out, err) = outcome(
        switchyard(&[("SWITCHYARD_DATA", env_dir)])
            .args(["sources", "create", "From env", "--json"]),
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json(env.path(), &["sources", "list"])[0]["id"],
        created["id"]
    );

    // Neither: ./data under the working directory.
    let cwd = tempfile::tempdir().unwrap();
    let (code, _, err) = outcome(
        switchyard(&[])
            .current_dir(cwd.path())
            .args(["sources", "create", "Default"]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(&cwd.path().join("data"), &["sources", "list"])[0]["name"],
        "Default"
    );
}

#[test]
fn the_server_sees_what_the_commands_wrote_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let created = json(data, &["sources", "create", "Made by a script"]);
    let id = text(&created, "id");
    let connection = new_mixpanel(data, &id);

    let running = serve(&[
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.to_str().unwrap()),
        ("SWITCHYARD_ADMIN_TOKEN", "script-token"),
    ]);
    let (status, body) = get(
        &[&running.origin, "/api/sources"].concat(),
        Some("script-token"),
    );
    assert_eq!(status, 200, "{body}");
    let sources: Value = serde_json::from_str(&body).unwrap();
    let listed = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not served: {body}"));
    assert_eq!(listed["name"], "Made by a script");
    assert_eq!(listed["write_key"], created["write_key"]);
    let (status, body) = get(
        &[&running.origin, "/api/sources/", &id, "/connections"].concat(),
        Some("script-token"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&connection), "{body}");

    // While it runs, the commands see what the server made (its demo
    // source) and can change the same data.
    let all = json(data, &["sources", "list"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), sources.as_array().unwrap().len(), "{all:?}");
    json(data, &["sources", "rename", &id, "Renamed while serving"]);
    let (_, body) = get(
        &[&running.origin, "/api/sources/", &id].concat(),
        Some("script-token"),
    );
    assert!(body.contains("Renamed while serving"), "{body}");
}

/// A local HTTP endpoint standing in for a webhook receiver: answers every
/// request with the status set in `status`, and keeps each body.
struct Receiver {
    port: u16,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Each request's head (request line and headers), lowercased.
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, b, h) = (status.clone(), bodies.clone(), heads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut data = Vec::new();
                let mut buf = [0u8; 65536];
                // Headers, then as much body as Content-Length says.
                let body = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(at) = text.find("\r\n\r\n") {
                        let length = text[..at]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if data.len() >= at + 4 + length {
                            h.lock().unwrap().push(text[..at].to_ascii_lowercase());
                            break Some(
                                String::from_utf8_lossy(&data[at + 4..at + 4 + length]).to_string(),
                            );
                        }
                    }
                };
                let Some(body) = body else { continue };
                b.lock().unwrap().push(body);
                let code = s.load(std::sync::atomic::Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Receiver {
            port,
            status,
            bodies,
            heads,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// A header of the last request.
    fn last_header(&self, name: &str) -> Option<String> {
        let heads = self.heads.lock().unwrap();
        let prefix = [name, ":"].concat();
        heads
            .last()?
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    fn last_body(&self) -> String {
        self.bodies
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// Runs `switchyard deliveries ARGS --data DATA --json` with loopback
/// allowed, which must succeed.
fn deliveries(data: &Path, args: &[&str]) -> Value {
    let mut cmd = switchyard(&[("SWITCHYARD_OUTBOUND_ALLOW", "127.0.0.1")]);
    cmd.arg("deliveries")
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--json");
    let (code, out, err) = outcome(&mut cmd);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

#[test]
fn deliveries_show_retry_discard_replay_and_test_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let receiver = Receiver::start();
    let source = new_source(data, "Shop");
    let hook = new_webhook(data, &source, &receiver.url(), &["--enable"]);
    let device = new_mixpanel(data, &source);

    let status = deliveries(data, &["status", &hook]);
    assert_eq!(status["lag"], 0, "{status}");
    assert_eq!(status["dead_letters"], 0);
    assert_eq!(status["enabled"], true);

    // The tester sends one event and shows the exchange.
    let report = deliveries(data, &["test", &hook]);
    assert_eq!(report["exchanges"][0]["status"], 200, "{report}");
    assert_eq!(receiver.bodies().len(), 1);
    assert_eq!(receiver.bodies()[0]["event"], "Order Completed");
    let mine = r#"{"type":"identify","userId":"u-7","traits":{"plan":"pro"}}"#;
    deliveries(data, &["test", &hook, "--event", mine]);
    assert_eq!(receiver.bodies()[1]["traits"]["plan"], "pro");
    // Without the operator's allowance, loopback is refused.
    let mut cmd = switchyard(&[]);
    cmd.args(["deliveries", "test", &hook, "--json", "--data"])
        .arg(data);
    let (code, out, _) = outcome(&mut cmd);
    assert_eq!(code, 0);
    assert!(out.contains("SWITCHYARD_OUTBOUND_ALLOW"), "{out}");
    assert_eq!(receiver.bodies().len(), 2, "a request reached loopback");

    // Events in the log and dead letters, as the server would have left them.
    let store = switchyard_store::SqliteStore::open(&data.join("switchyard.sqlite")).unwrap();
    block_on(async {
        use switchyard_store::{DeliveryStore, EventLog, NewDeadLetter, NewEvent};
        let event = |id: &str, at: &str| {
            NewEvent {
            source_id: source.clone(),
            message_id: id.into(),
            kind: "track",
            received_at: at.into(),
            json: serde_json::json!({"type": "track", "event": "Replayed", "userId": "u", "messageId": id, "receivedAt": at}).to_string(),
        }
        };
        store
            .append(vec![
                event("old", "2026-01-01T00:00:00.000Z"),
                event("new", "2026-01-05T00:00:00.000Z"),
            ])
            .await
            .unwrap();
        let letter = |id: &str| {
            NewDeadLetter {
            connection_id: hook.clone(),
            seq: 1,
            message_id: id.into(),
            event: serde_json::json!({"type": "track", "event": "Dead", "userId": "u", "messageId": id}).to_string(),
            reason: "HTTP 400".into(),
            request: None,
            response: None,
            attempts: 1,
        }
        };
        store
            .add_dead_letters(vec![letter("d1"), letter("d2")])
            .await
            .unwrap();
    });
    drop(store);

    let listed = deliveries(data, &["dead-letters", &hook]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let first = listed[0]["id"].as_i64().unwrap().to_string();
    let retried = deliveries(data, &["retry", &hook, "--id", &first]);
    assert_eq!(
        retried,
        serde_json::json!({"retried": 1, "dead_letters": 1})
    );
    assert_eq!(receiver.bodies().last().unwrap()["messageId"], "d1");
    // Refused again: it stays a dead letter, with the new answer.
    receiver
        .status
        .store(400, std::sync::atomic::Ordering::SeqCst);
    let retried = deliveries(data, &["retry", &hook]);
    assert_eq!(
        retried,
        serde_json::json!({"retried": 1, "dead_letters": 1})
    );
    receiver
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        deliveries(data, &["discard", &hook]),
        serde_json::json!({"discarded": 1})
    );
    assert_eq!(deliveries(data, &["status", &hook])["dead_letters"], 0);

    let before = receiver.bodies().len();
    let replay = deliveries(data, &["replay", &hook, "--from", "2026-01-02T00:00:00Z"]);
    assert_eq!(
        (
            replay["read"].clone(),
            replay["delivered"].clone(),
            replay["done"].clone()
        ),
        (1.into(), 1.into(), true.into()),
        "{replay}"
    );
    assert_eq!(receiver.bodies().len(), before + 1);
    assert_eq!(receiver.bodies().last().unwrap()["messageId"], "new");

    // What those commands delivered and what failed is in the status, as
    // the server's overview shows it: stored, not kept in a process.
    let status = deliveries(data, &["status", &hook]);
    let hour = &status["last_hour"];
    assert_eq!(hour["delivered"], 2, "{status}");
    assert_eq!(hour["dead_lettered"], 1, "{status}");
    assert_eq!(hour["failed_attempts"], 1, "{status}");
    assert_eq!(status["last_day"]["delivered"], 2);
    let failure = &status["recent_failures"][0];
    assert_eq!(failure["outcome"], "dead_letter", "{status}");
    assert_eq!(failure["message_ids"][0], "d2");
    assert!(
        failure["response"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 400"),
        "{failure}"
    );
    let mut cmd = switchyard(&[]);
    cmd.args(["deliveries", "status", &hook, "--data"])
        .arg(data);
    let (code, out, _) = outcome(&mut cmd);
    assert_eq!(code, 0);
    assert!(
        out.contains("last hour  received 0  delivered 2  dead-lettered 1"),
        "{out}"
    );
    assert!(out.contains("dead_letter  d2"), "{out}");

    // Bad input: a clear message, exit status 1, nothing sent.
    let sent = receiver.bodies().len();
    for (args, says) in [
        (vec!["deliveries", "status", "con_nope"], "no connection"),
        (vec!["deliveries", "test", &device], "cloud-mode"),
        (vec!["deliveries", "retry", &device], "cloud-mode"),
        (
            vec!["deliveries", "replay", &hook, "--from", "yesterday"],
            "RFC 3339",
        ),
        (
            vec![
                "deliveries",
                "replay",
                &hook,
                "--from",
                "2026-02-01T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "after",
        ),
        (
            vec!["deliveries", "test", &hook, "--event", "{"],
            "not JSON",
        ),
        (
            vec![
                "deliveries",
                "test",
                &hook,
                "--event",
                r#"{"type":"track","event":"A"}"#,
            ],
            "userId",
        ),
        (
            vec!["deliveries", "test", &hook, "--event", "[1]"],
            "not an object",
        ),
        (
            vec!["deliveries", "dead-letters", &hook, "--limit", "0"],
            "--limit",
        ),
        (
            vec!["deliveries", "discard", "con_\u{202e}\u{7}"],
            "no connection",
        ),
    ] {
        let err = fails(data, &args, 1);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(receiver.bodies().len(), sent);
}

/// A request with a JSON body, as a script would send it.
fn send_json(url: &str, auth: (&str, &str), body: &Value) -> (u16, String) {
    block_on(async {
        let req = reqwest::Client::new().post(url).json(body);
        let req = match auth {
            ("bearer", token) => req.bearer_auth(token),
            (_, write_key) => req.basic_auth(write_key, Some("")),
        };
        match req.timeout(Duration::from_secs(5)).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

#[test]
fn killed_under_load_every_acknowledged_event_still_reaches_every_destination() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data_dir.as_str()),
        ("SWITCHYARD_ADMIN_TOKEN", "crash-test-token"),
        ("SWITCHYARD_OUTBOUND_ALLOW", "127.0.0.1"),
        ("SWITCHYARD_BACKOFF_MIN_MS", "50"),
        ("SWITCHYARD_BACKOFF_MAX_MS", "500"),
        // Everything logged, to check that no secret is.
        ("RUST_LOG", "debug"),
    ];
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("serve.log");
    let first = serve_logging(&env, Some(&log_path));
    let write_key = after(&first.lines, "write key:").unwrap().to_string();
    let (status, sources) = get(
        &[&first.origin, "/api/sources"].concat(),
        Some("crash-test-token"),
    );
    assert_eq!(status, 200);
    let source: Value = serde_json::from_str(&sources).unwrap();
    let source_id = source[0]["id"].as_str().unwrap().to_string();
    let receivers = [Receiver::start(), Receiver::start()];
    for (i, r) in receivers.iter().enumerate() {
        let settings = if i == 0 {
            serde_json::json!({"url": r.url(), "batch": true, "batchSize": 50, "sharedSecret": "log-secret-5e1f"})
        } else {
            serde_json::json!({"url": r.url()})
        };
        let (status, body) = send_json(
            &[&first.origin, "/api/sources/", &source_id, "/connections"].concat(),
            ("bearer", "crash-test-token"),
            &serde_json::json!({"destination": "webhook", "mode": "cloud", "enabled": true, "settings": settings}),
        );
        assert_eq!(status, 201, "{body}");
    }

    // Load: batches of 20 from one client, each id kept once answered 2xx.
    let origin = std::sync::Arc::new(std::sync::Mutex::new(first.origin.clone()));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (origin, acked, stop, key) = (
            origin.clone(),
            acked.clone(),
            stop.clone(),
            write_key.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst)
                && started.elapsed() < Duration::from_secs(60)
            {
                let ids: Vec<String> = (0..20).map(|i| format!("crash-{n}-{i}")).collect();
                n += 1;
                let batch: Vec<Value> = ids
                    .iter()
                    .map(|id| serde_json::json!({"type": "track", "event": "Load", "userId": "u", "messageId": id}))
                    .collect();
                let url = [origin.lock().unwrap().as_str(), "/v1/batch"].concat();
                let (status, _) =
                    send_json(&url, ("basic", &key), &serde_json::json!({"batch": batch}));
                if status == 200 {
                    acked.lock().unwrap().extend(ids);
                }
            }
        })
    };
    let wait_acked = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "the load did not get going");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acked(400);
    drop(first); // SIGKILL, mid-load.
    let before_restart = acked.lock().unwrap().len();
    // The first destination refuses for a while: failures are handled (and
    // would be logged) too.
    receivers[0]
        .status
        .store(503, std::sync::atomic::Ordering::SeqCst);
    let second = serve_logging(&env, Some(&log_path));
    *origin.lock().unwrap() = second.origin.clone();
    wait_acked(before_restart + 400);
    receivers[0]
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.join().unwrap();

    let acked: std::collections::BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 800);
    for (i, r) in receivers.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got: std::collections::BTreeSet<String> = r
                .bodies()
                .iter()
                .flat_map(|b| match b {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                })
                .filter_map(|e| e["messageId"].as_str().map(str::to_string))
                .collect();
            let missing = acked.difference(&got).count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "destination {i}: {missing} acknowledged events never arrived"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(second);
    // The secret signed every request the first destination got, and
    // appears nowhere in what the server logged after its start-up
    // message (which shows the demo source's write key, as it should).
    assert!(receivers[0].bodies().len() > 1);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines().count() > 20,
        "the server logged almost nothing: {log}"
    );
    for secret in ["log-secret-5e1f", "crash-test-token", write_key.as_str()] {
        let leak = log.lines().find(|l| l.contains(secret));
        assert!(leak.is_none(), "{secret} is in the log: {leak:?}");
    }
}

// ---------------------------------------------------------------------------
// Secrets at rest.

/// Whether any of the data directory's database files holds `text`.
fn database_holds(data: &Path, text: &str) -> bool {
    ["switchyard.sqlite", "switchyard.sqlite-wal"]
        .iter()
        .any(|name| {
            std::fs::read(data.join(name))
                .is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
        })
}

/// The store as it is on disk, without the server's sealing.
fn raw_store(data: &Path) -> switchyard_store::SqliteStore {
    switchyard_store::SqliteStore::open(&data.join("switchyard.sqlite")).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn hmac_hex(secret: &str, body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn secret_settings_are_sealed_at_rest_and_a_copy_of_the_database_opens_none() {
    use switchyard_store::ConfigStore;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let receiver = Receiver::start();
    let source = new_source(data, "Shop");
    let secret = "hunter2-signing-secret";
    let set_secret = ["sharedSecret=", secret].concat();
    let hook = new_webhook(
        data,
        &source,
        &receiver.url(),
        &["--set", &set_secret, "--enable"],
    );

    // What is stored is sealed, and no file of the database holds the
    // secret.
    let stored = block_on(raw_store(data).connection(&hook))
        .unwrap()
        .unwrap();
    let settings: Value = serde_json::from_str(&stored.settings).unwrap();
    let sealed = settings["sharedSecret"].as_str().unwrap();
    assert!(sealed.starts_with("sy1:"), "{sealed}");
    assert_eq!(settings["url"], receiver.url(), "only secrets are sealed");
    assert!(!database_holds(data, secret));
    let key_file = data.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    }

    // Delivery uses the secret itself: the signature is the HMAC of the
    // body with it.
    deliveries(data, &["test", &hook]);
    assert_eq!(
        receiver.last_header("x-signature"),
        Some(hmac_hex(secret, &receiver.last_body()))
    );

    // A copy of the database without the key: refused, with why.
    let copy = tempfile::tempdir().unwrap();
    for name in ["switchyard.sqlite", "switchyard.sqlite-wal"] {
        if data.join(name).exists() {
            std::fs::copy(data.join(name), copy.path().join(name)).unwrap();
        }
    }
    let err = fails(copy.path(), &["connections", "list", &source], 1);
    assert!(err.contains("secret key does not open"), "{err}");
    // With the key, the copy works, and still shows the secret masked.
    let key = std::fs::read_to_string(&key_file).unwrap();
    let mut cmd = switchyard(&[("SWITCHYARD_SECRET_KEY", key.trim())]);
    cmd.args(["connections", "show", &hook, "--json", "--data"])
        .arg(copy.path());
    let (code, out, err) = outcome(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["settings"]["sharedSecret"], MASK);
    // A key that is not one is a clear error.
    let mut cmd = switchyard(&[("SWITCHYARD_SECRET_KEY", "short")]);
    cmd.args(["connections", "list", &source, "--data"])
        .arg(copy.path());
    let (code, _, err) = outcome(&mut cmd);
    assert_eq!(code, 1);
    assert!(err.contains("64 hex digits or in base64"), "{err}");
}

#[test]
fn secrets_stored_in_plain_text_before_are_sealed_at_the_next_start() {
    use switchyard_store::ConfigStore;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let raw = raw_store(data);
    let (source, old) = block_on(async {
        let source = raw.create_source("Old").await.unwrap();
        let old = raw
            .create_connection(switchyard_store::NewConnection {
                source_id: source.id.clone(),
                destination: "mixpanel".into(),
                mode: switchyard_store::Mode::Cloud,
                enabled: false,
                settings: serde_json::json!({"token": TOKEN, "apiSecret": "plain-old-api-secret"})
                    .to_string(),
            })
            .await
            .unwrap();
        (source, old)
    });
    drop(raw);
    let listed = json(data, &["connections", "list", &source.id]);
    assert_eq!(listed[0]["settings"]["apiSecret"], MASK);
    let stored = block_on(raw_store(data).connection(&old.id))
        .unwrap()
        .unwrap();
    assert!(
        !stored.settings.contains("plain-old-api-secret"),
        "{}",
        stored.settings
    );
    assert!(
        stored.settings.contains(TOKEN),
        "the project token is not a secret"
    );
}

#[test]
fn a_connection_whose_destination_left_the_catalog_shows_no_setting() {
    use switchyard_store::ConfigStore;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let gone = block_on(async {
        raw_store(data)
            .create_connection(switchyard_store::NewConnection {
                source_id: source.clone(),
                destination: "retired_vendor".into(),
                mode: switchyard_store::Mode::Cloud,
                enabled: true,
                settings: serde_json::json!({"apiKey": "plain-retired-key"}).to_string(),
            })
            .await
            .unwrap()
    });
    let shown = json(data, &["connections", "show", &gone.id]);
    assert_eq!(shown["settings"]["apiKey"], MASK, "{shown}");
    assert!(warning_codes(&shown).contains(&"unknown_destination".to_string()));
    let (_, out, _) = run(data, &["connections", "list", &source]);
    assert!(!out.contains("plain-retired-key"), "{out}");
}

#[test]
fn the_admin_token_is_kept_hashed_and_an_older_plain_one_is_hashed_at_start() {
    use switchyard_store::ConfigStore;
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
    ];
    let token = {
        let first = serve(&env);
        after(&first.lines, "Admin token:").unwrap().to_string()
    };
    let sha = |t: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let raw = raw_store(data.path());
    let (hash, plain) = block_on(async {
        (
            raw.meta("admin_token_sha256").await.unwrap(),
            raw.meta("admin_token").await.unwrap(),
        )
    });
    assert_eq!(hash, Some(sha(&token)));
    assert_eq!(plain, None);
    assert!(!database_holds(data.path(), &token));

    // An instance from before hashing kept the token in plain text: it
    // still works, and is hashed and gone from the database.
    block_on(async {
        raw.set_meta("admin_token_sha256", "").await.unwrap();
        raw.set_meta("admin_token", "legacy-token-0123456789")
            .await
            .unwrap();
    });
    drop(raw);
    let again = serve(&env);
    let url = [&again.origin, "/api/sources"].concat();
    assert_eq!(get(&url, Some("legacy-token-0123456789")).0, 200);
    assert_eq!(get(&url, Some(&token)).0, 401);
    let raw = raw_store(data.path());
    let (hash, plain) = block_on(async {
        (
            raw.meta("admin_token_sha256").await.unwrap(),
            raw.meta("admin_token").await.unwrap(),
        )
    });
    assert_eq!(hash, Some(sha("legacy-token-0123456789")));
    assert_eq!(plain.as_deref(), Some(""));
}

#[test]
fn every_request_is_logged_with_its_route_status_and_source_and_no_write_key() {
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("server.log");
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_ADMIN_TOKEN", "log-test-token"),
        ("RUST_LOG", "switchyard::request=info"),
    ];
    let running = serve_logging(&env, Some(&log_path));
    let write_key = after(&running.lines, "write key:").unwrap().to_string();
    let track = serde_json::json!({"event": "Logged", "userId": "u", "properties": {"note": "body-text-never-logged"}});
    let url = [&running.origin, "/v1/track"].concat();
    assert_eq!(send_json(&url, ("basic", &write_key), &track).0, 200);
    assert_eq!(send_json(&url, ("basic", "not-a-key"), &track).0, 401);
    let missing = [&running.origin, "/no/such/", &write_key].concat();
    assert_eq!(get(&missing, None).0, 404);
    let settings = [&running.origin, "/v1/projects/", &write_key, "/settings"].concat();
    assert_eq!(get(&settings, None).0, 200);
    let sources = get(
        &[&running.origin, "/api/sources"].concat(),
        Some("log-test-token"),
    );
    assert_eq!(sources.0, 200);
    let source_id = serde_json::from_str::<Value>(&sources.1).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The lines are written as the requests end; wait for the fifth.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.lines().filter(|l| l.contains("route=")).count() >= 5 || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("route=")).collect();
    let ok = lines
        .iter()
        .find(|l| l.contains("status=200") && l.contains("/v1/{call}"))
        .unwrap_or_else(|| panic!("no line for the accepted call: {log}"));
    assert!(ok.contains("method=POST"), "{ok}");
    assert!(
        ok.contains(&["source=\"", &source_id, "\""].concat()),
        "{ok}"
    );
    assert!(ok.contains("ms="), "{ok}");
    // The public bundle routes name their source too.
    let settings = lines
        .iter()
        .find(|l| l.contains("/settings"))
        .unwrap_or_else(|| panic!("no line for the settings document: {log}"));
    assert!(
        settings.contains(&["source=\"", &source_id, "\""].concat()),
        "{settings}"
    );
    assert!(lines.iter().any(|l| l.contains("status=401")), "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("status=404") && l.contains("(no route)")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("route=\"/api/sources\"") && l.contains("status=200")),
        "{log}"
    );
    assert!(!log.contains(&write_key), "a write key was logged: {log}");
    assert!(!log.contains("body-text-never-logged"), "a body was logged");
    assert!(
        !log.contains("log-test-token"),
        "the admin token was logged"
    );
}

/// `GET url` with extra headers; the JSON it answers.
fn get_json_with(url: &str, headers: &[(&str, &str)]) -> Value {
    block_on(async {
        let mut req = reqwest::Client::new().get(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap().json().await.unwrap()
    })
}

#[test]
fn a_forged_host_never_reaches_the_settings_document_unless_a_trusted_proxy_sends_it() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
    ];
    let running = serve(&env);
    let write_key = after(&running.lines, "write key:").unwrap().to_string();
    let url = [&running.origin, "/v1/projects/", &write_key, "/settings"].concat();
    let forged = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let doc = get_json_with(&url, &forged);
    let io = &doc["integrations"]["Segment.io"];
    let listen = running.origin.trim_start_matches("http://");
    assert_eq!(io["apiHost"], [listen, "/v1"].concat(), "{doc}");
    assert_eq!(io["protocol"], "http");
    drop(running);

    // Behind a proxy the operator trusts, the proxy names the origin.
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_TRUSTED_PROXIES", "127.0.0.0/8"),
    ];
    let running = serve(&env);
    let url = [&running.origin, "/v1/projects/", &write_key, "/settings"].concat();
    let doc = get_json_with(
        &url,
        &[
            ("x-forwarded-host", "events.example.com"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let io = &doc["integrations"]["Segment.io"];
    assert_eq!(io["apiHost"], "events.example.com/v1", "{doc}");
    assert_eq!(io["protocol"], "https");
    drop(running);

    let out = switchyard(&[
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_TRUSTED_PROXIES", "10.0.0.0/8, the-proxy"),
    ])
    .arg("serve")
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`the-proxy` is not an address or a CIDR"),
        "{err}"
    );
}

#[test]
fn a_server_has_no_demo_unless_asked() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_DEMO", "false"),
    ];
    let running = serve(&env);
    let token = after(&running.lines, "Admin token:").unwrap().to_string();
    assert!(
        after(&running.lines, "write key:").is_none(),
        "{:?}",
        running.lines
    );
    assert!(after(&running.lines, "Demo page:").is_none());
    let (status, body) = get(&[&running.origin, "/demo"].concat(), None);
    assert_eq!(status, 404);
    assert!(body.contains("--demo"), "{body}");
    let (status, body) = get(&[&running.origin, "/api/sources"].concat(), Some(&token));
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "[]", "a source nobody asked for");
}

/// A small filesystem of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &["size=", size].concat(), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount is needed to make a small filesystem");
        assert!(
            out.status.success(),
            "cannot mount a small tmpfs (the test needs to): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_makes_tracking_answer_503_and_the_rest_keeps_serving() {
    let disk = SmallDisk::new("6m");
    let data = disk.dir.path().join("data");
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.to_str().unwrap()),
        ("SWITCHYARD_ADMIN_TOKEN", "disk-token"),
        ("SWITCHYARD_RATE_LIMIT", "0"),
    ];
    let running = serve(&env);
    let write_key = after(&running.lines, "write key:").unwrap().to_string();
    let url = [&running.origin, "/v1/batch"].concat();
    let batch = |n: usize| {
        let events: Vec<Value> = (0..40)
            .map(|i| serde_json::json!({"type": "track", "event": "Filling", "userId": "u", "messageId": format!("fill-{n}-{i}"), "properties": {"pad": "x".repeat(8_000)}}))
            .collect();
        serde_json::json!({ "batch": events })
    };
    // Some accepted while there is room.
    let mut accepted = 0;
    for n in 0..3 {
        let (status, body) = send_json(&url, ("basic", &write_key), &batch(500 + n));
        assert_eq!(status, 200, "{body}");
        accepted += 40;
    }
    // Fill what is left of the disk, then send until the log cannot grow.
    let filler = disk.dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
    }
    let mut refused = None;
    for n in 0..200 {
        let (status, body) = send_json(&url, ("basic", &write_key), &batch(n));
        match status {
            200 => accepted += 40,
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!("batch {n}: {other} {body}"),
        }
    }
    let body = refused.expect("the disk never filled up");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("storage is full"),
        "{body}"
    );
    let head = block_on(async {
        reqwest::Client::new()
            .post(&url)
            .basic_auth(&write_key, Some(""))
            .json(&batch(999))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(head.status().as_u16(), 503);
    assert_eq!(head.headers()["retry-after"], "30");

    // Everything else still serves.
    let (status, _) = get(
        &[&running.origin, "/api/sources"].concat(),
        Some("disk-token"),
    );
    assert_eq!(status, 200);
    let loader = [
        &running.origin,
        "/analytics.js/v1/",
        &write_key,
        "/analytics.min.js",
    ]
    .concat();
    assert_eq!(get(&loader, None).0, 200);

    // Room again: accepted again, and nothing accepted before is lost.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = send_json(&url, ("basic", &write_key), &batch(1000));
    assert_eq!(status, 200, "{body}");
    accepted += 40;
    let (status, events) = get(
        &[&running.origin, "/api/events?limit=1000"].concat(),
        Some("disk-token"),
    );
    assert_eq!(status, 200);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(accepted),
        "accepted events lost"
    );
    drop(running);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHYARD_ADDR", "127.0.0.1:0"),
        ("SWITCHYARD_DATA", data.path().to_str().unwrap()),
        ("SWITCHYARD_HTTP_TIMEOUT", "1"),
    ];
    let running = serve(&env);
    let addr = running.origin.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = match slow.read(&mut buf) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(closed, "the connection was still open after 8 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "cut off at once: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "cut off late: {took:?}");
    // Others are served as ever.
    let (status, _) = get(
        &[&running.origin, "/v1/projects/nope/settings"].concat(),
        None,
    );
    assert_eq!(status, 404);
}

/// Hostile arguments in every position of every command: oversized,
/// control characters, reordering unicode, empty, SQL and paths, deeply
/// nested JSON, wrong types. Each gets an exit status of 1 (refused) or 2
/// (usage), one short `error:` message safe to print on a terminal, and
/// nothing changes.
#[test]
fn hostile_arguments_to_every_command_are_refused_safely_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let source = new_source(data, "Shop");
    let device = new_mixpanel(data, &source);
    let hook = new_webhook(data, &source, "https://127.0.0.1:9/h", &[]);
    let snapshot = || {
        (
            json(data, &["sources", "list"]),
            json(data, &["connections", "list", &source]),
            {
                // The chart is labelled by the minute, which moves on its own.
                let mut status = json(data, &["deliveries", "status", &hook]);
                status.as_object_mut().unwrap().remove("chart");
                status
            },
            json(data, &["deliveries", "dead-letters", &hook]),
        )
    };
    let before = snapshot();

    let deep_array = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    // Values no command accepts where an id, a name, a mode, a setting, a
    // time, a number or an event goes.
    let values: Vec<(&str, String)> = vec![
        ("oversized", "x".repeat(100_000)),
        ("control characters", "\u{7}\u{1b}[2J\r\nline two".into()),
        ("reordering unicode", "\u{202e}gnp.exe\u{2066}".into()),
        ("long unicode", "é".repeat(300)),
        ("empty", String::new()),
        ("deeply nested array", deep_array),
        ("deeply nested object", deep_object),
    ];
    // Each command with `{}` where the hostile value goes.
    let slot = "{}";
    let token = ["token=", TOKEN].concat();
    let commands: Vec<Vec<&str>> = vec![
        vec!["sources", "create", slot],
        vec!["sources", "show", slot],
        vec!["sources", "rename", slot, "New name"],
        vec!["sources", "rename", &source, slot],
        vec!["sources", "rotate-key", slot],
        vec!["sources", "delete", slot],
        vec!["connections", "list", slot],
        vec![
            "connections",
            "add",
            slot,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            &token,
        ],
        vec!["connections", "add", &source, slot, "--enable"],
        vec![
            "connections",
            "add",
            &source,
            "mixpanel",
            "--mode",
            slot,
            "--set",
            &token,
        ],
        vec![
            "connections",
            "add",
            &source,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            slot,
        ],
        vec![
            "connections",
            "add",
            &source,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            "token={}",
        ],
        vec![
            "connections",
            "add",
            &source,
            "mixpanel",
            "--mode",
            "device",
            "--set",
            &token,
            "--set",
            "{}=1",
        ],
        vec!["connections", "add", &source, "webhook", "--set", "url={}"],
        vec!["connections", "show", slot],
        vec!["connections", "set", slot, "--set", &token],
        vec!["connections", "set", &device, "--set", "token={}"],
        vec!["connections", "set", &device, "--set", "{}=1"],
        vec!["connections", "set", &device, "--mode", slot],
        vec!["connections", "set", &hook, "--set", "url={}"],
        vec!["connections", "enable", slot],
        vec!["connections", "disable", slot],
        vec!["connections", "remove", slot],
        vec!["deliveries", "status", slot],
        vec!["deliveries", "dead-letters", slot],
        vec!["deliveries", "dead-letters", &hook, "--limit", slot],
        vec!["deliveries", "retry", slot],
        vec!["deliveries", "retry", &hook, "--id", slot],
        vec!["deliveries", "discard", slot],
        vec!["deliveries", "discard", &hook, "--id", slot],
        vec![
            "deliveries",
            "replay",
            slot,
            "--from",
            "2026-01-01T00:00:00Z",
        ],
        vec!["deliveries", "replay", &hook, "--from", slot],
        vec![
            "deliveries",
            "replay",
            &hook,
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            slot,
        ],
        vec!["deliveries", "test", slot],
        vec!["deliveries", "test", &hook, "--event", slot],
        vec!["catalog", "--category", slot],
    ];
    for command in &commands {
        for (what, value) in &values {
            let args: Vec<String> = command.iter().map(|a| a.replace(slot, value)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = run(data, &args);
            let shown = || format!("{command:?} with {what}");
            assert!(code == 1 || code == 2, "{}: exit {code}, {err}", shown());
            assert_eq!(out, "", "{}: printed to stdout", shown());
            assert!(err.starts_with("error: "), "{}: {err}", shown());
            assert!(
                err.len() < 2_000,
                "{}: {} bytes of message",
                shown(),
                err.len()
            );
            assert!(
                !err.chars().any(
                    |c| (c.is_control() && c != '\n') || switchyard_server::service::is_bidi(c)
                ),
                "{}: a raw control or reordering character in {err:?}",
                shown()
            );
            if code == 1 {
                assert_eq!(err.lines().count(), 1, "{}: {err}", shown());
            }
        }
        let after = snapshot();
        assert!(after == before, "{command:?} changed the data: {after:?}");
    }

    // Wrong types where a number goes, and numbers out of range.
    for args in [
        vec!["deliveries", "dead-letters", &hook, "--limit", "ten"],
        vec!["deliveries", "dead-letters", &hook, "--limit=-1"],
        vec![
            "deliveries",
            "dead-letters",
            &hook,
            "--limit",
            "99999999999999999999999",
        ],
        vec!["deliveries", "retry", &hook, "--id", "1.5"],
        vec!["deliveries", "discard", &hook, "--id", "0x10"],
    ] {
        let err = fails(data, &args, 2);
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
    assert!(snapshot() == before);

    // Odd but valid text is kept exactly as given, never run as SQL or
    // followed as a path; searching for it finds nothing and says so.
    for name in [
        "x'; DROP TABLE sources; --",
        "../../../etc/passwd",
        "名前 🚀",
    ] {
        let made = json(data, &["sources", "create", name]);
        let id = text(&made, "id");
        assert_eq!(json(data, &["sources", "show", &id])["name"], name);
        let (code, _, err) = run(data, &["sources", "delete", &id]);
        assert_eq!(code, 0, "{err}");
        let found = json(data, &["catalog", name]);
        assert_eq!(found, serde_json::json!([]), "{name}");
    }
    assert!(snapshot() == before, "the odd names left something behind");
}
