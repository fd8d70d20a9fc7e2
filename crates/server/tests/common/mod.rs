//! A server in memory: a fresh SQLite store in a temporary directory,
//! driven with `oneshot`, no socket.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_bundler::Artifacts;
use switchyard_server::AppState;
use switchyard_store::{ConfigStore, EventLog, Source, SqliteStore};
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub state: AppState,
    pub store: SqliteStore,
    pub source: Source,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// What `cargo xtask build-client` writes, in small: the loader template
/// (glue and loader in one function scope) and a module.
pub fn artifacts() -> Artifacts {
    Artifacts::new(
        "(function(){let wasm_bindgen = function () {};\nvar config = __SWITCHYARD_CONFIG__;})();\n",
        b"\0asm\x01\0\0\0".to_vec(),
    )
    .unwrap()
}

impl TestApp {
    pub async fn new() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let source = store.create_source("Shop").await.unwrap();
        let shared = Arc::new(store.clone());
        let catalog = Arc::new(switchyard_destinations::catalog().unwrap());
        let delivery = switchyard_delivery::Engine::new(
            switchyard_delivery::Deps {
                config_store: shared.clone(),
                store: shared.clone(),
                log: shared.clone(),
                catalog: catalog.clone(),
            },
            switchyard_delivery::Config::default(),
        )
        .unwrap();
        let state = AppState {
            config: shared.clone(),
            events: shared.clone(),
            delivery_store: shared,
            delivery,
            metrics: Default::default(),
            metrics_public: false,
            live: tokio::sync::broadcast::channel(64).0,
            catalog,
            artifacts: Arc::new(Ok(artifacts())),
            admin_token: TOKEN.into(),
            public_url: None,
            loader_max_age: 60,
            public: Default::default(),
            limits: Default::default(),
            trusted_proxies: Default::default(),
            demo: true,
        };
        TestApp {
            state,
            store,
            source,
            _dir: dir,
        }
    }

    pub fn app(&self) -> Router {
        switchyard_server::app(self.state.clone())
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn admin_get(&self, uri: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header("authorization", ["Bearer ", TOKEN].concat())
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn admin_post(&self, uri: &str, body: &str) -> Reply {
        self.send(
            Request::post(uri)
                .header("authorization", ["Bearer ", TOKEN].concat())
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// Posts a tracking call with the write key as HTTP Basic user.
    pub async fn track(&self, path: &str, body: impl Into<Body>) -> Reply {
        self.send(
            Request::post(path)
                .header("authorization", basic(&self.source.write_key))
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// What the event log holds, newest first.
    pub async fn stored_events(&self) -> Vec<Value> {
        self.store
            .recent(None, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect()
    }

    pub async fn stored(&self) -> usize {
        self.stored_events().await.len()
    }

    pub async fn source_named(&self, name: &str) -> Source {
        self.store.create_source(name).await.unwrap()
    }
}

pub fn basic(user: &str) -> String {
    use base64::Engine;
    [
        "Basic ",
        &base64::engine::general_purpose::STANDARD.encode([user, ":"].concat()),
    ]
    .concat()
}
