//! One conformance suite every `ConfigStore` backend passes.

#![allow(dead_code)]

use switchyard_store::{
    ConfigStore, ConnectionUpdate, DeliveryStore, FAILURES_KEPT, FailureRecord, Handled,
    NewConnection, NewDeadLetter, NewRetry, ReplayRecord, STATS_MINUTES_KEPT, StatsMinute,
    StoreError,
};

fn new_connection(source_id: &str, destination: &str) -> NewConnection {
    NewConnection {
        source_id: source_id.into(),
        destination: destination.into(),
        mode: switchyard_spec::Mode::Cloud,
        enabled: false,
        settings: r#"{"token":"abc"}"#.into(),
    }
}

pub async fn config_store(store: &dyn ConfigStore) {
    sources(store).await;
    connections(store).await;
    meta(store).await;
}

async fn sources(store: &dyn ConfigStore) {
    let a = store.create_source("Shop").await.unwrap();
    let b = store.create_source("Blog <b>").await.unwrap();
    assert_ne!(a.write_key, b.write_key);
    assert_eq!(a.write_key.len(), 32);
    assert_eq!(a.revision, 1);
    assert_eq!(store.source(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.source_by_write_key(&b.write_key).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.source_by_write_key("nope").await.unwrap(), None);
    assert_eq!(store.source("src_nope").await.unwrap(), None);
    let names: Vec<String> = store
        .sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"Shop".to_string()) && names.contains(&"Blog <b>".to_string()));

    let renamed = store.rename_source(&a.id, "Store").await.unwrap();
    assert_eq!(renamed.name, "Store");
    assert_eq!(renamed.revision, 2);
    assert_eq!(renamed.write_key, a.write_key);

    let rotated = store.rotate_write_key(&a.id).await.unwrap();
    assert_ne!(rotated.write_key, a.write_key);
    assert_eq!(rotated.revision, 3);
    assert_eq!(store.source_by_write_key(&a.write_key).await.unwrap(), None);
    assert_eq!(
        store.source_by_write_key(&rotated.write_key).await.unwrap(),
        Some(rotated.clone())
    );

    store.delete_source(&b.id).await.unwrap();
    assert_eq!(store.source(&b.id).await.unwrap(), None);
    for result in [
        store.delete_source(&b.id).await.map(drop),
        store.rename_source(&b.id, "x").await.map(drop),
        store.rotate_write_key(&b.id).await.map(drop),
    ] {
        assert!(
            matches!(result, Err(StoreError::NotFound("source"))),
            "{result:?}"
        );
    }
}

async fn connections(store: &dyn ConfigStore) {
    let source = store.create_source("With connections").await.unwrap();
    let first = store
        .create_connection(new_connection(&source.id, "mixpanel"))
        .await
        .unwrap();
    assert_eq!(first.destination, "mixpanel");
    assert!(!first.enabled);
    assert_eq!(first.settings, r#"{"token":"abc"}"#);
    let second = store
        .create_connection(new_connection(&source.id, "webhook"))
        .await
        .unwrap();
    assert_eq!(store.source(&source.id).await.unwrap().unwrap().revision, 3);
    assert_eq!(
        store.connection(&first.id).await.unwrap(),
        Some(first.clone())
    );
    let listed: Vec<String> = store
        .connections(&source.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, [first.id.clone(), second.id.clone()]);

    let enabled = store
        .update_connection(
            &first.id,
            ConnectionUpdate {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.mode, switchyard_spec::Mode::Cloud);
    let moved = store
        .update_connection(
            &first.id,
            ConnectionUpdate {
                mode: Some(switchyard_spec::Mode::Device),
                settings: Some("{}".into()),
                enabled: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.mode.as_str(), moved.enabled, moved.settings.as_str()),
        ("device", true, "{}")
    );
    assert_eq!(store.connection(&first.id).await.unwrap(), Some(moved));
    assert_eq!(store.source(&source.id).await.unwrap().unwrap().revision, 5);

    store.delete_connection(&second.id).await.unwrap();
    assert_eq!(store.connection(&second.id).await.unwrap(), None);
    assert_eq!(store.source(&source.id).await.unwrap().unwrap().revision, 6);
    assert!(matches!(
        store.delete_connection(&second.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_connection(&second.id, ConnectionUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .create_connection(new_connection("src_nope", "mixpanel"))
            .await,
        Err(StoreError::NotFound("source"))
    ));

    // Deleting a source removes its connections.
    store.delete_source(&source.id).await.unwrap();
    assert_eq!(store.connection(&first.id).await.unwrap(), None);
    assert!(store.connections(&source.id).await.unwrap().is_empty());
}

async fn meta(store: &dyn ConfigStore) {
    // A key of its own, so the suite can run twice on one database.
    let key = ["key-", &store.create_source("meta").await.unwrap().id].concat();
    assert_eq!(store.meta(&key).await.unwrap(), None);
    store.set_meta(&key, "1").await.unwrap();
    store.set_meta(&key, "2").await.unwrap();
    assert_eq!(store.meta(&key).await.unwrap().as_deref(), Some("2"));
}

fn dead_letter(connection_id: &str, seq: i64, reason: &str) -> NewDeadLetter {
    NewDeadLetter {
        connection_id: connection_id.into(),
        seq,
        message_id: ["m", &seq.to_string()].concat(),
        event: ["{\"messageId\":\"m", &seq.to_string(), "\"}"].concat(),
        reason: reason.into(),
        request: Some("POST https://api.example.com/import".into()),
        response: Some("HTTP 400: bad".into()),
        attempts: 1,
    }
}

/// Cursors and dead letters, kept with a connection and gone with it.
pub async fn delivery_store(config: &dyn ConfigStore, store: &dyn DeliveryStore) {
    let source = config.create_source("Delivery").await.unwrap();
    let a = config
        .create_connection(new_connection(&source.id, "webhook"))
        .await
        .unwrap();
    let b = config
        .create_connection(new_connection(&source.id, "mixpanel"))
        .await
        .unwrap();
    assert_eq!(store.cursor(&a.id).await.unwrap(), None);

    store.advance(&a.id, 7, Handled::default()).await.unwrap();
    store
        .advance(
            &a.id,
            12,
            vec![
                dead_letter(&a.id, 9, "HTTP 400"),
                dead_letter(&a.id, 11, "HTTP 422"),
            ]
            .into(),
        )
        .await
        .unwrap();
    store.advance(&b.id, 3, Handled::default()).await.unwrap();
    assert_eq!(store.cursor(&a.id).await.unwrap(), Some(12));
    assert_eq!(store.cursor(&b.id).await.unwrap(), Some(3));

    store
        .add_dead_letters(vec![dead_letter(&b.id, 2, "window over")])
        .await
        .unwrap();
    let dead = store.dead_letters(&a.id, 10).await.unwrap();
    let seqs: Vec<i64> = dead.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, [9, 11]);
    let first = &dead[0];
    assert_eq!(first.connection_id, a.id);
    assert_eq!(first.message_id, "m9");
    assert_eq!(first.event, "{\"messageId\":\"m9\"}");
    assert_eq!(first.reason, "HTTP 400");
    assert_eq!(
        first.request.as_deref(),
        Some("POST https://api.example.com/import")
    );
    assert_eq!(first.response.as_deref(), Some("HTTP 400: bad"));
    assert_eq!(first.attempts, 1);
    assert!(first.failed_at.ends_with('Z'), "{}", first.failed_at);
    assert_eq!(store.dead_letters(&a.id, 1).await.unwrap().len(), 1);
    assert_eq!(store.dead_letter_count(&a.id).await.unwrap(), 2);
    assert_eq!(store.dead_letter_count(&b.id).await.unwrap(), 1);

    // Removing one by id, then the rest; another connection's stay.
    assert_eq!(
        store
            .remove_dead_letters(&a.id, Some(&[first.id]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .remove_dead_letters(&b.id, Some(&[dead[1].id]))
            .await
            .unwrap(),
        0,
        "a dead letter of another connection is not removed"
    );
    assert_eq!(store.dead_letter_count(&a.id).await.unwrap(), 1);
    assert_eq!(store.remove_dead_letters(&a.id, None).await.unwrap(), 1);
    assert_eq!(store.dead_letter_count(&a.id).await.unwrap(), 0);
    assert_eq!(store.dead_letter_count(&b.id).await.unwrap(), 1);

    retries(store, &a.id, &b.id).await;
    stats(store, &a.id, &b.id).await;
    failures(store, &a.id, &b.id).await;
    replays(store, &a.id, &b.id).await;

    // A deleted connection takes its cursor, dead letters, retries,
    // counts, failures and replays with it.
    config.delete_connection(&b.id).await.unwrap();
    assert_eq!(store.cursor(&b.id).await.unwrap(), None);
    assert_eq!(store.dead_letter_count(&b.id).await.unwrap(), 0);
    assert_eq!(store.retry_count(&b.id).await.unwrap(), 0);
    assert!(store.stats(&b.id, 0).await.unwrap().is_empty());
    assert!(store.failures(&b.id, 10).await.unwrap().is_empty());
    assert!(store.replays(&b.id, 10).await.unwrap().is_empty());
    // What arrives for a connection that is gone is dropped, not an error
    // that would stop the others being kept.
    let later = 100 + STATS_MINUTES_KEPT + 2;
    store
        .add_stats(vec![minute(&b.id, later, 1), minute(&a.id, later, 1)])
        .await
        .unwrap();
    assert!(store.stats(&b.id, 0).await.unwrap().is_empty());
    assert_eq!(store.stats(&a.id, later).await.unwrap()[0].delivered, 1);
}

fn retry(connection_id: &str, seq: i64, next_at: &str) -> NewRetry {
    NewRetry {
        connection_id: connection_id.into(),
        seq,
        message_id: ["m", &seq.to_string()].concat(),
        event: ["{\"messageId\":\"m", &seq.to_string(), "\"}"].concat(),
        reason: "HTTP 500".into(),
        attempts: 3,
        first_failed_at: "2026-12-01T10:00:00.000Z".into(),
        next_at: next_at.into(),
    }
}

async fn retries(store: &dyn DeliveryStore, a: &str, b: &str) {
    // Set aside with the cursor's move, in one transaction.
    store
        .advance(
            a,
            20,
            Handled {
                dead: Vec::new(),
                retries: vec![
                    retry(a, 14, "2026-12-01T10:00:05.000Z"),
                    retry(a, 13, "2026-12-01T10:00:01.000Z"),
                    retry(a, 15, "2026-12-01T11:00:00.000Z"),
                ],
            },
        )
        .await
        .unwrap();
    store
        .advance(
            b,
            4,
            Handled {
                dead: Vec::new(),
                retries: vec![retry(b, 4, "2026-12-01T10:00:00.000Z")],
            },
        )
        .await
        .unwrap();
    assert_eq!(store.cursor(a).await.unwrap(), Some(20));
    assert_eq!(store.retry_count(a).await.unwrap(), 3);

    // Due ones only, soonest first, of this connection only.
    let due = store
        .due_retries(a, "2026-12-01T10:00:10.000Z", 10)
        .await
        .unwrap();
    let seqs: Vec<i64> = due.iter().map(|r| r.retry.seq).collect();
    assert_eq!(seqs, [13, 14]);
    assert_eq!(due[0].retry, retry(a, 13, "2026-12-01T10:00:01.000Z"));
    assert_eq!(
        store
            .due_retries(a, "2026-12-01T10:00:10.000Z", 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // 13 delivered, 14 given up on: one goes, the other becomes a dead
    // letter; another connection's ids are not touched.
    let dead_before = store.dead_letter_count(a).await.unwrap();
    store
        .settle_retries(
            a,
            &[due[0].id, due[1].id],
            vec![dead_letter(a, 14, "window over")].into(),
        )
        .await
        .unwrap();
    assert_eq!(store.retry_count(a).await.unwrap(), 1);
    assert_eq!(store.dead_letter_count(a).await.unwrap(), dead_before + 1);
    let b_due = store
        .due_retries(b, "2026-12-02T00:00:00.000Z", 10)
        .await
        .unwrap();
    store
        .settle_retries(a, &[b_due[0].id], Handled::default())
        .await
        .unwrap();
    assert_eq!(store.retry_count(b).await.unwrap(), 1, "not a's to settle");

    // Sent again and failing again: put back for later.
    let later = store
        .due_retries(a, "2026-12-01T12:00:00.000Z", 10)
        .await
        .unwrap();
    let mut again = later[0].retry.clone();
    again.attempts = 4;
    again.next_at = "2026-12-01T13:00:00.000Z".into();
    store
        .settle_retries(
            a,
            &[later[0].id],
            Handled {
                dead: Vec::new(),
                retries: vec![again.clone()],
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .due_retries(a, "2026-12-01T12:00:00.000Z", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = store
        .due_retries(a, "2026-12-01T13:00:00.000Z", 10)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].retry, again);
}

fn minute(connection_id: &str, at: i64, delivered: i64) -> StatsMinute {
    StatsMinute {
        connection_id: connection_id.into(),
        minute: at,
        received: delivered + 1,
        filtered: [("integrations_off".to_string(), 1)].into(),
        delivered,
        dead_lettered: 0,
        failed_attempts: 2,
        latency: vec![0, delivered, 0],
        latency_sum_ms: 10 * delivered,
    }
}

async fn stats(store: &dyn DeliveryStore, a: &str, b: &str) {
    // Counts of one minute add up, however many times they come.
    store
        .add_stats(vec![minute(a, 100, 2), minute(b, 100, 5)])
        .await
        .unwrap();
    let mut second = minute(a, 100, 1);
    second.filtered = [("method_not_accepted".to_string(), 4)].into();
    second.latency = vec![1, 0, 0, 7];
    store
        .add_stats(vec![second, minute(a, 101, 9)])
        .await
        .unwrap();
    let rows = store.stats(a, 0).await.unwrap();
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    assert_eq!(
        (first.minute, first.received, first.delivered),
        (100, 3 + 2, 3)
    );
    assert_eq!(first.failed_attempts, 4);
    assert_eq!(
        first.filtered,
        [
            ("integrations_off".to_string(), 1),
            ("method_not_accepted".to_string(), 4)
        ]
        .into()
    );
    assert_eq!(first.latency, vec![1, 2, 0, 7]);
    assert_eq!(first.latency_sum_ms, 30);
    assert_eq!(rows[1].minute, 101);
    assert_eq!(store.stats(a, 101).await.unwrap().len(), 1);
    assert_eq!(store.stats(b, 0).await.unwrap()[0].delivered, 5);

    // Minutes older than a day and an hour before the newest are
    // forgotten.
    store
        .add_stats(vec![minute(a, 100 + STATS_MINUTES_KEPT + 1, 1)])
        .await
        .unwrap();
    let kept: Vec<i64> = store
        .stats(a, 0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.minute)
        .collect();
    assert_eq!(kept, [101, 100 + STATS_MINUTES_KEPT + 1]);
}

fn failure(connection_id: &str, n: usize) -> FailureRecord {
    FailureRecord {
        connection_id: connection_id.into(),
        at: format!("2026-12-01T10:00:{:02}.000Z", n % 60),
        message_ids: vec![format!("m{n}"), format!("m{n}b")],
        outcome: "retry".into(),
        reason: format!("HTTP 503 #{n}"),
        request: "POST https://api.example.com/import\n\n[]".into(),
        response: n.is_multiple_of(2).then(|| "HTTP 503\n\nbusy".to_string()),
    }
}

async fn failures(store: &dyn DeliveryStore, a: &str, b: &str) {
    store
        .add_failures((0..FAILURES_KEPT + 5).map(|n| failure(a, n)).collect())
        .await
        .unwrap();
    store.add_failures(vec![failure(b, 1)]).await.unwrap();
    let kept = store.failures(a, 1000).await.unwrap();
    assert_eq!(kept.len(), FAILURES_KEPT, "the newest are kept");
    assert_eq!(kept[0], failure(a, FAILURES_KEPT + 4), "newest first");
    assert_eq!(kept[FAILURES_KEPT - 1], failure(a, 5));
    assert_eq!(store.failures(a, 3).await.unwrap().len(), 3);
    assert_eq!(store.failures(b, 10).await.unwrap(), vec![failure(b, 1)]);
}

async fn replays(store: &dyn DeliveryStore, a: &str, b: &str) {
    let mut replay = ReplayRecord {
        id: format!("rpl_{a}"),
        connection_id: a.into(),
        from: "2026-12-01T00:00:00.000Z".into(),
        to: "2026-12-01T23:59:59.000Z".into(),
        started_at: "2026-12-01T12:00:00.000Z".into(),
        updated_at: "2026-12-01T12:00:00.000Z".into(),
        ..ReplayRecord::default()
    };
    store.save_replay(replay.clone()).await.unwrap();
    assert_eq!(
        store.replay(&replay.id).await.unwrap(),
        Some(replay.clone())
    );
    // Progress is saved over the same record.
    replay.read = 100;
    replay.filtered = 3;
    replay.delivered = 95;
    replay.dead_lettered = 2;
    replay.done = true;
    replay.error = Some("stopped".into());
    replay.updated_at = "2026-12-01T12:01:00.000Z".into();
    store.save_replay(replay.clone()).await.unwrap();
    assert_eq!(
        store.replay(&replay.id).await.unwrap(),
        Some(replay.clone())
    );
    let newer = ReplayRecord {
        id: format!("rpl_{a}_2"),
        started_at: "2026-12-01T13:00:00.000Z".into(),
        ..replay.clone()
    };
    store.save_replay(newer.clone()).await.unwrap();
    store
        .save_replay(ReplayRecord {
            id: format!("rpl_{b}"),
            connection_id: b.into(),
            ..replay.clone()
        })
        .await
        .unwrap();
    let ids: Vec<String> = store
        .replays(a, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [newer.id.clone(), replay.id.clone()], "newest first");
    assert_eq!(store.replay("rpl_unknown").await.unwrap(), None);
    // A replay of a connection that does not exist is refused.
    assert!(
        store
            .save_replay(ReplayRecord {
                id: "rpl_nobody".into(),
                connection_id: "con_nobody".into(),
                ..replay
            })
            .await
            .is_err()
    );
}
