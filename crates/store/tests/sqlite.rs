//! The SQLite store: configuration round trips and the event log's
//! durability, dedupe and ordering.

mod common;

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
