//! One conformance suite every `ConfigStore` backend passes.

#![allow(dead_code)]

use switchyard_store::{ConfigStore, ConnectionUpdate, NewConnection, StoreError};

fn new_connection(source_id: &str, destination: &str) -> NewConnection {
    NewConnection {
        source_id: source_id.into(),
        destination: destination.into(),
        mode: "cloud".into(),
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
    assert_eq!(enabled.mode, "cloud");
    let moved = store
        .update_connection(
            &first.id,
            ConnectionUpdate {
                mode: Some("device".into()),
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
