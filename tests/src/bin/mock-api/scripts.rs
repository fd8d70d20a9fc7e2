//! The scripts a device-mode test page loads: the vendors' own SDK builds
//! from `tests/vendor/node_modules` (pinned in `tests/vendor/package.json`),
//! stand-ins for vendors whose script is not on npm
//! (`tests/vendor/standins/`), and hostile scripts for isolation tests.
//! Every load is recorded under the vendor name `script`.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// How long `/vendor/hostile/hang.js` holds its connection without
/// answering, unless `?ms=` says otherwise.
const HANG: Duration = Duration::from_secs(600);

/// The body of `/vendor/hostile/throws.js`: it leaves a mark, then throws
/// while it loads, as a broken vendor script would.
const THROWS: &str = "(window.__standin = window.__standin || {}).hostile = \
    (window.__standin.hostile || []).concat(['throws']);\n\
    throw new Error('hostile vendor script: thrown on load');\n";

/// The stand-ins' shared helpers (`plain`, `record`, `loaded`), put in
/// front of each stand-in inside one function scope.
const PRELUDE: &str = "_prelude.js";

fn content_type(path: &str) -> &'static str {
    let path = path.strip_suffix(".gz").unwrap_or(path);
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs" | "cjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    }
}

/// A script response as a CDN gives it: any origin, never cached, and
/// `Content-Encoding: gzip` for a `.gz` file (Amplitude's CDN name is
/// `…-min.js.gz`).
fn script(path: &str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into(),
    )
        .into_response();
    if path.ends_with(".gz") {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    crate::cors(r)
}

fn not_found() -> Response {
    crate::cors((StatusCode::NOT_FOUND, "not found").into_response())
}

/// `relative` under `root`, or `None` if it would leave it.
pub(crate) fn inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

fn record_load(state: &AppState, uri: &Uri, headers: &HeaderMap) {
    crate::vendor::record(
        &state.records,
        "script",
        &Method::GET,
        uri,
        headers,
        &Bytes::new(),
    );
}

/// `GET /vendor/npm/{package path}`: a file of an installed vendor package,
/// e.g. `/vendor/npm/posthog-js/dist/array.js`.
pub(crate) async fn npm(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    record_load(&state, &uri, &headers);
    let relative = uri.path().trim_start_matches("/vendor/npm/");
    file(&state.vendor_dir.join("node_modules"), relative).await
}

/// The file `relative` names under `root`, as a CDN serves it; 404 if it
/// is not there or is outside `root`.
pub(crate) async fn file(root: &Path, relative: &str) -> Response {
    let Some(path) = inside(root, relative) else {
        return not_found();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => script(relative, bytes),
        Err(_) => not_found(),
    }
}

/// The stand-in a request path names: its first segment without `.js`,
/// `hotjar-{id}` as `hotjar` and Crisp's `l.js` as `crisp`, so the vendors'
/// URL shapes work once their host is replaced: `/vendor/standin/gtag.js?id=G-1`,
/// `/vendor/standin/gtag/js?id=G-1`, `/vendor/standin/hotjar-123.js?sv=6`,
/// `/vendor/standin/intercom/{app_id}`, `/vendor/standin/l.js`.
pub(crate) fn standin_name(rest: &str) -> &str {
    let first = rest.split('/').next().unwrap_or_default();
    let name = first.strip_suffix(".js").unwrap_or(first);
    if name.starts_with("hotjar-") {
        "hotjar"
    } else if name == "l" {
        "crisp"
    } else {
        name
    }
}

/// `GET /vendor/standin/{name}.js`: a stand-in vendor script, wrapped with
/// the shared helpers in one function scope.
pub(crate) async fn standin(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record_load(&state, &uri, &headers);
    let name = standin_name(uri.path().trim_start_matches("/vendor/standin/"));
    let dir = state.vendor_dir.join("standins");
    if name.is_empty() || name.starts_with(['_', '.']) {
        return not_found();
    }
    let Some(file) = inside(&dir, &[name, ".js"].concat()) else {
        return not_found();
    };
    let (Ok(prelude), Ok(body)) = (
        tokio::fs::read_to_string(dir.join(PRELUDE)).await,
        tokio::fs::read_to_string(&file).await,
    ) else {
        return not_found();
    };
    let name_literal = serde_json::Value::from(name).to_string();
    script(
        "standin.js",
        [
            "(function (STANDIN) {\n",
            &prelude,
            "\n",
            &body,
            "\n})(",
            &name_literal,
            ");\n",
        ]
        .concat(),
    )
}

/// `GET /vendor/hostile/{missing,hang,throws}.js`: a script that is not
/// there (404), one whose server never answers (`?ms=` to bound it), and
/// one that throws as it runs.
pub(crate) async fn hostile(
    State(state): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record_load(&state, &uri, &headers);
    match uri.path().trim_start_matches("/vendor/hostile/") {
        "hang.js" => {
            let wait = q
                .get("ms")
                .and_then(|ms| ms.parse().ok())
                .map_or(HANG, Duration::from_millis);
            tokio::time::sleep(wait).await;
            script("hang.js", "/* answered late */\n")
        }
        "throws.js" => script("throws.js", THROWS),
        _ => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standin_names_follow_the_vendors_url_shapes() {
        for (path, name) in [
            ("gtag.js", "gtag"),
            ("gtag/js", "gtag"),
            ("gtm.js", "gtm"),
            ("hotjar-123.js", "hotjar"),
            ("intercom/abc123", "intercom"),
            ("l.js", "crisp"),
            ("crisp.js", "crisp"),
            ("fbevents.js", "fbevents"),
            ("", ""),
        ] {
            assert_eq!(standin_name(path), name, "{path}");
        }
    }

    #[test]
    fn paths_cannot_leave_their_folder() {
        let root = Path::new("/srv");
        assert_eq!(
            inside(root, "posthog-js/dist/array.js"),
            Some(PathBuf::from("/srv/posthog-js/dist/array.js"))
        );
        assert_eq!(inside(root, "../secret"), None);
        assert_eq!(inside(root, "a/../../b"), None);
        assert_eq!(inside(root, "/etc/passwd"), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/b.min.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.js.gz"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.js.map"), "application/json");
    }
}
