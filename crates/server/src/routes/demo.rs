//! `/demo`: a page that embeds the demo source's snippet.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Redirect};
use axum::routing::get;

use crate::boot::{DEMO_SOURCE_KEY, snippet};
use crate::{AppError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/demo") }))
        .route("/demo", get(demo))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PAGE: &str = include_str!("demo.html");

async fn demo(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Result<Html<String>, AppError> {
    if !state.demo {
        return Err(AppError::NotFound(
            "no demo on this server: start it with --demo (SWITCHYARD_DEMO=true)".into(),
        ));
    }
    let id = state
        .config
        .meta(DEMO_SOURCE_KEY)
        .await?
        .ok_or_else(|| AppError::NotFound("this instance has no demo source".into()))?;
    let source = state
        .config
        .source(&id)
        .await?
        .ok_or_else(|| AppError::NotFound("the demo source was deleted".into()))?;
    let origin = super::origin(&state, &headers, &extensions);
    let snippet = snippet(&source.write_key, &origin);
    Ok(Html(
        PAGE.replace("{{snippet}}", &snippet)
            .replace("{{snippet_text}}", &escape(&snippet))
            .replace("{{origin}}", &escape(&origin))
            .replace("{{source}}", &escape(&source.name)),
    ))
}
