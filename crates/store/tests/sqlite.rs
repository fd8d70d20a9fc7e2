//! The SQLite store: configuration round trips and the event log's
//! durability, dedupe and ordering.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard_store::{EventLog, NewEvent, SqliteStore};

fn event(source: &str, message_id: &str) -> NewEvent {
    NewEvent {
        source_id: source.into(),
        message_id: message_id.into(),
        kind: "track",
        received_at: "2026-11-28T12:00:00.000Z".into(),
        json: ["{\"messageId\":\"", message_id, "\"}"].concat(),
    }
}

#[tokio::test]
async fn passes_the_config_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    common::config_store(&store).await;
    common::delivery_store(&store, &store).await;
}

#[tokio::test]
async fn a_cursor_reads_forwards_per_source_and_positions_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.head().await.unwrap(), 0);
    store
        .append(vec![
            event("s1", "m1"),
            event("s2", "m1"),
            event("s1", "m2"),
        ])
        .await
        .unwrap();
    store.append(vec![event("s1", "m3")]).await.unwrap();
    let head = store.head().await.unwrap();
    let s1 = store.read_after("s1", 0, 10).await.unwrap();
    let seqs: Vec<i64> = s1.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(*seqs.last().unwrap(), head);
    assert!(s1.iter().all(|e| e.source_id == "s1"));
    let after = store.read_after("s1", seqs[0], 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].json, "{\"messageId\":\"m2\"}");
    assert!(store.read_after("s1", head, 10).await.unwrap().is_empty());
    assert_eq!(store.count_after("s1", 0).await.unwrap(), 3);
    assert_eq!(store.count_after("s1", seqs[0]).await.unwrap(), 2);
    assert_eq!(store.count_after("s2", head).await.unwrap(), 0);

    // The newest rows gone (as retention will remove old ones): a new
    // event still gets a position after every one handed out before.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("DELETE FROM events WHERE seq >= ?1", [seqs[1]])
        .unwrap();
    store.append(vec![event("s1", "m4")]).await.unwrap();
    let newest = store.read_after("s1", 0, 10).await.unwrap();
    assert!(newest.last().unwrap().seq > head, "a position was reused");
    assert_eq!(store.head().await.unwrap(), newest.last().unwrap().seq);
}

#[tokio::test]
async fn a_replay_starts_at_the_first_event_received_at_or_after_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    let at = |id: &str, t: &str| NewEvent {
        received_at: t.into(),
        ..event("s1", id)
    };
    store
        .append(vec![
            at("m1", "2026-11-28T10:00:00.000Z"),
            at("m2", "2026-11-28T11:00:00.000Z"),
            at("m3", "2026-11-28T12:00:00.000Z"),
        ])
        .await
        .unwrap();
    let all = store.read_after("s1", 0, 10).await.unwrap();
    let from = store
        .position_at("s1", "2026-11-28T10:30:00.000Z")
        .await
        .unwrap();
    let replayed = store.read_after("s1", from, 10).await.unwrap();
    assert_eq!(replayed.first().map(|e| e.seq), Some(all[1].seq));
    let later = store
        .position_at("s1", "2026-11-29T00:00:00.000Z")
        .await
        .unwrap();
    assert!(store.read_after("s1", later, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn methods_seen_follow_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    assert!(store.methods_seen("s1").await.unwrap().is_empty());
    let mut page = event("s1", "m3");
    page.kind = "page";
    store
        .append(vec![
            event("s1", "m1"),
            event("s1", "m2"),
            page,
            event("s2", "m1"),
        ])
        .await
        .unwrap();
    assert_eq!(store.methods_seen("s1").await.unwrap(), ["page", "track"]);
    assert_eq!(store.methods_seen("s2").await.unwrap(), ["track"]);
}

#[tokio::test]
async fn events_are_deduplicated_per_source_and_read_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    let n = store
        .append(vec![
            event("s1", "m1"),
            event("s1", "m2"),
            event("s2", "m1"),
        ])
        .await
        .unwrap();
    assert_eq!(n, 3);
    // A retried event (same messageId) is not stored twice.
    assert_eq!(store.append(vec![event("s1", "m1")]).await.unwrap(), 0);
    let all = store.recent(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[0].seq > all[1].seq && all[1].seq > all[2].seq);
    let s1 = store.recent(Some("s1"), 10).await.unwrap();
    let ids: Vec<_> = s1.iter().map(|e| e.json.as_str()).collect();
    assert_eq!(ids, ["{\"messageId\":\"m2\"}", "{\"messageId\":\"m1\"}"]);
    assert_eq!(store.recent(Some("s1"), 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_appends_are_all_kept_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let id = [t.to_string(), "-".into(), i.to_string()].concat();
                    store.append(vec![event("s", &id)]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.recent(None, 1000).await.unwrap().len(), 400);
}

/// Set in the child a durability test starts: the path of the database
/// it appends to before it is killed.
const KILLED_WRITER: &str = "SWITCHYARD_TEST_KILLED_WRITER_DB";

/// The events the killed writer appends, in two appends: what the parent
/// expects to find, field by field.
fn killed_writer_events() -> [Vec<NewEvent>; 2] {
    let one = |source: &str, id: &str, kind: &'static str, at: &str| NewEvent {
        source_id: source.into(),
        message_id: id.into(),
        kind,
        received_at: at.into(),
        json: serde_json::json!({"type": kind, "messageId": id, "properties": {"n": id}})
            .to_string(),
    };
    [
        vec![
            one("s1", "k1", "track", "2026-11-28T12:00:00.000Z"),
            one("s2", "k1", "identify", "2026-11-28T12:00:01.000Z"),
        ],
        vec![one("s1", "k2", "page", "2026-11-28T12:00:02.000Z")],
    ]
}

/// The child's part: open the store, append, say so, and wait to be
/// killed (never closing the store).
async fn append_then_wait_to_be_killed(path: &str) {
    let store = SqliteStore::open(std::path::Path::new(path)).unwrap();
    for events in killed_writer_events() {
        let n = events.len();
        assert_eq!(store.append(events).await.unwrap(), n);
    }
    // On a line of its own: the test harness has started one with the
    // test's name.
    println!("\nappended");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(store);
    panic!("the parent never killed this writer");
}

#[tokio::test]
async fn an_append_that_returned_survives_the_writer_being_killed() {
    if let Ok(path) = std::env::var(KILLED_WRITER) {
        return append_then_wait_to_be_killed(&path).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    // This test again, in a child process that appends and is then
    // killed with SIGKILL: no destructor, no close, no checkpoint.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_append_that_returned_survives_the_writer_being_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILLED_WRITER, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut heard = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match said.recv_timeout(left) {
            Ok(line) if line.trim() == "appended" => break,
            Ok(line) => heard.push(line),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the writer never said it appended ({e}); it printed {heard:?}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status}");

    let store = SqliteStore::open(&path).unwrap();
    let [first, second] = killed_writer_events();
    let want: Vec<NewEvent> = first.into_iter().chain(second).collect();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut rows = raw
        .prepare(
            "SELECT seq, source_id, message_id, type, received_at, body FROM events ORDER BY seq",
        )
        .unwrap();
    let got: Vec<(i64, String, String, String, String, String)> = rows
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), want.len(), "stored after the kill: {got:?}");
    for ((_, source, id, kind, at, body), want) in got.iter().zip(&want) {
        assert_eq!(source, &want.source_id);
        assert_eq!(id, &want.message_id);
        assert_eq!(kind, want.kind);
        assert_eq!(at, &want.received_at);
        assert_eq!(body, &want.json);
    }
    // And through the log's own reads, in order, per source.
    let s1 = store.read_after("s1", 0, 10).await.unwrap();
    let bodies: Vec<&str> = s1.iter().map(|e| e.json.as_str()).collect();
    assert_eq!(bodies, [want[0].json.as_str(), want[2].json.as_str()]);
    assert!(s1.iter().all(|e| e.source_id == "s1"));
    let s2 = store.read_after("s2", 0, 10).await.unwrap();
    assert_eq!(s2.len(), 1);
    assert_eq!(s2[0].json, want[1].json);
    assert_eq!(store.methods_seen("s1").await.unwrap(), ["page", "track"]);
}

#[tokio::test]
async fn retention_removes_what_is_older_and_keeps_the_rest_and_the_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    let at = |id: &str, t: &str| NewEvent {
        received_at: t.into(),
        ..event("s1", id)
    };
    let old: Vec<NewEvent> = (0..12_000)
        .map(|i| at(&format!("old-{i}"), "2026-10-01T00:00:00.000Z"))
        .collect();
    store.append(old).await.unwrap();
    store
        .append(vec![
            at("edge", "2026-11-01T00:00:00.000Z"),
            at("new", "2026-11-20T00:00:00.000Z"),
        ])
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let removed = store
        .prune_before("2026-11-01T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(removed, 12_000, "in chunks, all of them");
    let left: Vec<String> = store
        .read_after("s1", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.json.clone())
        .collect();
    assert_eq!(
        left,
        ["{\"messageId\":\"edge\"}", "{\"messageId\":\"new\"}"]
    );
    // Positions are not handed out again after the oldest rows go.
    store.append(vec![event("s1", "after")]).await.unwrap();
    assert!(store.head().await.unwrap() > head);
    assert_eq!(
        store
            .prune_before("2026-11-01T00:00:00.000Z")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn retention_by_size_removes_the_oldest_until_the_log_fits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let padding = "x".repeat(1000);
    let big = |i: usize| NewEvent {
        json: format!("{{\"messageId\":\"m-{i}\",\"p\":\"{padding}\"}}"),
        ..event("s1", &format!("m-{i}"))
    };
    for chunk in (0..6000).collect::<Vec<_>>().chunks(500) {
        store
            .append(chunk.iter().map(|&i| big(i)).collect())
            .await
            .unwrap();
    }
    let used = |path: &std::path::Path| {
        let c = rusqlite::Connection::open(path).unwrap();
        let get = |p: &str| -> i64 {
            c.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                .unwrap()
        };
        (get("page_count") - get("freelist_count")) * get("page_size")
    };
    assert!(used(&path) > 6_000_000, "the log holds about 6 MB");
    assert_eq!(store.prune_to_size(50_000_000).await.unwrap(), 0, "it fits");

    let removed = store.prune_to_size(2_000_000).await.unwrap();
    assert!(used(&path) <= 2_000_000, "used {} bytes", used(&path));
    // What went is the oldest, and no more than needed to fit.
    let left = store.read_after("s1", 0, 10_000).await.unwrap();
    assert_eq!(left.len() as u64, 6000 - removed);
    assert!(left.len() > 1000, "kept {} of 6000", left.len());
    let first = 6000 - left.len();
    assert!(
        left[0]
            .json
            .starts_with(&format!("{{\"messageId\":\"m-{first}\""))
    );
    assert!(
        left.last()
            .unwrap()
            .json
            .starts_with("{\"messageId\":\"m-5999\"")
    );
}
