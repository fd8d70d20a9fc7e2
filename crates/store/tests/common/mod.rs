//! One conformance suite every `ConfigStore` backend passes.

#![allow(dead_code)]

use switchyard_store::{
    ConfigStore, ConnectionUpdate, DeliveryStore, NewConnection, NewDeadLetter, StoreError,
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

    store.advance(&a.id, 7, Vec::new()).await.unwrap();
    store
        .advance(
            &a.id,
            12,
            vec![
                dead_letter(&a.id, 9, "HTTP 400"),
                dead_letter(&a.id, 11, "HTTP 422"),
            ],
        )
        .await
        .unwrap();
    store.advance(&b.id, 3, Vec::new()).await.unwrap();
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

    // A deleted connection takes its cursor and dead letters with it.
    config.delete_connection(&b.id).await.unwrap();
    assert_eq!(store.cursor(&b.id).await.unwrap(), None);
    assert_eq!(store.dead_letter_count(&b.id).await.unwrap(), 0);
}
