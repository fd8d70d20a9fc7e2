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
