//! What measuring adds to the end-to-end helpers: a log of every request a
//! server answered (with the bytes it sent), and a server whose app can be
//! wrapped and whose stores can be used directly.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use switchyard_server::boot;

/// One request a server answered, as it went over the wire.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Which server answered (the tag given to [`log_requests`]).
    pub server: &'static str,
    /// When the request arrived.
    pub at: Instant,
    /// How long the app took to answer it (until its body was complete).
    pub took: std::time::Duration,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The request's `Accept-Encoding`.
    pub accept_encoding: Option<String>,
    /// The response's `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// The response body as sent (compressed if `content_encoding` says so).
    pub body: Bytes,
}

/// Every request the servers it is given to answered, in arrival order.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Logged>>>);

impl RequestLog {
    /// How many requests are logged: a mark to read from later.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests logged since `mark`.
    pub fn since(&self, mark: usize) -> Vec<Logged> {
        self.0.lock().unwrap()[mark..].to_vec()
    }
}

/// Wraps `router` so every request it answers is appended to `log`,
/// tagged `server`. Response bodies are buffered to be logged: meant for
/// measuring, not for streaming responses.
pub fn log_requests(router: Router, log: RequestLog, server: &'static str) -> Router {
    router.layer(axum::middleware::from_fn_with_state((log, server), record))
}

async fn record(
    State((log, server)): State<(RequestLog, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let text = |v: Option<&header::HeaderValue>| v.and_then(|v| v.to_str().ok()).map(String::from);
    let accept_encoding = text(request.headers().get(header::ACCEPT_ENCODING));
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    log.0.lock().unwrap().push(Logged {
        server,
        at,
        took: at.elapsed(),
        method,
        path,
        status: parts.status.as_u16(),
        accept_encoding,
        content_encoding: text(parts.headers.get(header::CONTENT_ENCODING)),
        body: body.clone(),
    });
    Response::from_parts(parts, Body::from(body))
}

/// A Switchyard server as `switchyard serve` runs it, on a free port, with
/// `wrap` applied to its app (to log its requests, say). Returns its
/// origin and the app's state, whose stores can be used directly (to
/// create sources, or read the event log without the admin API's limit).
/// The data directory lives as long as the returned guard.
pub async fn start_server(
    wrap: impl FnOnce(Router) -> Router,
) -> Result<(String, switchyard_server::AppState, tempfile::TempDir)> {
    let data = tempfile::tempdir()?;
    let config = crate::serve_config(data.path())?;
    let opened = boot::open(&config).await?;
    if let Some(problem) = opened.artifacts_problem {
        bail!("{problem}");
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let app = wrap(switchyard_server::app(opened.state.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((["http://", &addr.to_string()].concat(), opened.state, data))
}

/// A Chrome DevTools Protocol command, sent through chromedriver's
/// `goog/cdp/execute` to the current tab.
#[derive(Debug)]
struct DevTools {
    body: String,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        let session = session_id.unwrap_or_default();
        base_url.join(&["session/", session, "/goog/cdp/execute"].concat())
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(self.body.clone()))
    }
}

/// Runs a Chrome DevTools Protocol command (`Network.setCacheDisabled`,
/// say) in the browser's current tab and returns its result.
pub async fn devtools(
    browser: &crate::Browser,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value> {
    let body = serde_json::json!({ "cmd": method, "params": params }).to_string();
    browser
        .client
        .issue_cmd(DevTools { body })
        .await
        .with_context(|| ["DevTools ", method].concat())
}
