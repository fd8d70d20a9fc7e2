//! The public bundle routes do work bounded by the configuration, not by
//! what an anonymous caller asks for: an unknown module hash is answered
//! from memory (one look at the sources a second at most, a rebuild only
//! when they changed, one rebuild for any number of waiting requests), and
//! a loader is built once per source revision, 304s included.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use switchyard_store::{ConfigStore, Connection, ConnectionUpdate, NewConnection, Result, Source};

/// A configuration store that counts the reads the bundle routes make.
struct Counting {
    inner: Arc<dyn ConfigStore>,
    sources: AtomicUsize,
    connections: AtomicUsize,
}

#[async_trait]
impl ConfigStore for Counting {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.inner.meta(key).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.inner.set_meta(key, value).await
    }
    async fn create_source(&self, name: &str) -> Result<Source> {
        self.inner.create_source(name).await
    }
    async fn sources(&self) -> Result<Vec<Source>> {
        self.sources.fetch_add(1, Ordering::SeqCst);
        self.inner.sources().await
    }
    async fn source(&self, id: &str) -> Result<Option<Source>> {
        self.inner.source(id).await
    }
    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>> {
        self.inner.source_by_write_key(write_key).await
    }
    async fn rename_source(&self, id: &str, name: &str) -> Result<Source> {
        self.inner.rename_source(id, name).await
    }
    async fn rotate_write_key(&self, id: &str) -> Result<Source> {
        self.inner.rotate_write_key(id).await
    }
    async fn delete_source(&self, id: &str) -> Result<()> {
        self.inner.delete_source(id).await
    }
    async fn create_connection(&self, new: NewConnection) -> Result<Connection> {
        self.inner.create_connection(new).await
    }
    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        self.inner.connection(id).await
    }
    async fn connections(&self, source_id: &str) -> Result<Vec<Connection>> {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.inner.connections(source_id).await
    }
    async fn update_connection(&self, id: &str, update: ConnectionUpdate) -> Result<Connection> {
        self.inner.update_connection(id, update).await
    }
    async fn delete_connection(&self, id: &str) -> Result<()> {
        self.inner.delete_connection(id).await
    }
}

async fn counted() -> (TestApp, Arc<Counting>) {
    let mut t = TestApp::new().await;
    let counting = Arc::new(Counting {
        inner: t.state.config.clone(),
        sources: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    t.state.config = counting.clone();
    (t, counting)
}

fn unknown_hash(i: usize) -> String {
    format!("/b/{i:032x}.wasm")
}

#[tokio::test]
async fn unknown_module_hashes_are_answered_from_memory() {
    let (t, counting) = counted().await;
    for i in 0..200 {
        let r = t.get(&unknown_hash(i)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("no module"));
    }
    assert_eq!(
        counting.sources.load(Ordering::SeqCst),
        1,
        "200 unknown hashes looked at the sources more than once"
    );
    // A second later, with nothing changed: one more look, no rebuild.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let connections = counting.connections.load(Ordering::SeqCst);
    assert_eq!(t.get(&unknown_hash(1)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(counting.sources.load(Ordering::SeqCst), 2);
    assert_eq!(
        counting.connections.load(Ordering::SeqCst),
        connections,
        "the sources had not changed, yet a rebuild read their connections"
    );
}

#[tokio::test]
async fn many_requests_for_unknown_hashes_at_once_share_one_look() {
    let (t, counting) = counted().await;
    let app = t.app();
    let requests = (0..64).map(|i| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let request = Request::get(unknown_hash(1000 + i))
                .body(Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::NOT_FOUND));
    assert_eq!(counting.sources.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_loader_is_built_once_per_revision() {
    let (t, counting) = counted().await;
    let url = format!("/analytics.js/v1/{}/analytics.min.js", t.source.write_key);
    let first = t.get(&url).await;
    assert_eq!(first.status, StatusCode::OK);
    let built = counting.connections.load(Ordering::SeqCst);
    let etag = first.header("etag").to_string();
    for _ in 0..20 {
        let again = t.get(&url).await;
        assert_eq!(again.body, first.body);
        let revalidated = t
            .send(
                Request::get(&url)
                    .header("if-none-match", &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    }
    assert_eq!(
        counting.connections.load(Ordering::SeqCst),
        built,
        "an unchanged source's loader was built again"
    );

    // A change raises the revision: the next loader is new.
    t.admin_post(
        &format!("/api/sources/{}/connections", t.source.id),
        r#"{"destination": "webhook", "mode": "cloud", "settings": {"url": "https://example.com/hook"}, "enabled": true}"#,
    )
    .await;
    let changed = t.get(&url).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    assert!(changed.text().contains("Webhook"), "{}", changed.text());
    // A rotated write key: the old one's loader is gone at once.
    t.admin_post(&format!("/api/sources/{}/rotate-key", t.source.id), "")
        .await;
    assert_eq!(t.get(&url).await.status, StatusCode::NOT_FOUND);
}
