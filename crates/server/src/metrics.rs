//! The server's own counters, and `/metrics` in Prometheus' text format:
//! the tracking API's accepted and refused events, and each connection's
//! delivery (attempts by outcome, events by result, filtered by reason,
//! lag, retrying, latency histogram).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard_delivery::stats::LATENCY_BOUNDS_MS;

use crate::AppState;

#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    stored: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Events in a request the tracking API answered 200, and how many of
    /// them were new (not repeats of a stored messageId).
    pub fn accepted(&self, events: u64, new: u64) {
        self.accepted.fetch_add(events, Ordering::Relaxed);
        self.stored.fetch_add(new, Ordering::Relaxed);
    }

    /// A tracking request refused, by reason.
    pub fn refused(&self, reason: &'static str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }
}

/// A label value, escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The whole `/metrics` document.
pub async fn render(state: &AppState) -> String {
    let mut out = String::new();
    let m = &state.metrics;
    header(
        &mut out,
        "switchyard_events_accepted_total",
        "counter",
        "Events in tracking requests answered 200.",
    );
    let _ = writeln!(
        out,
        "switchyard_events_accepted_total {}",
        m.accepted.load(Ordering::Relaxed)
    );
    header(
        &mut out,
        "switchyard_events_stored_total",
        "counter",
        "Accepted events that were new to the log (not repeated messageIds).",
    );
    let _ = writeln!(
        out,
        "switchyard_events_stored_total {}",
        m.stored.load(Ordering::Relaxed)
    );
    header(
        &mut out,
        "switchyard_requests_refused_total",
        "counter",
        "Tracking requests refused, by reason.",
    );
    for (reason, n) in m.refused.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(
            out,
            "switchyard_requests_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }

    // Each connection delivery has counted, with its destination.
    let mut rows = Vec::new();
    for (id, stats) in state.delivery.all_stats() {
        let Ok(Some(connection)) = state.config.connection(&id).await else {
            continue;
        };
        let lag = match state.delivery_store.cursor(&id).await {
            Ok(Some(cursor)) => state
                .events
                .count_after(&connection.source_id, cursor)
                .await
                .unwrap_or(0),
            _ => 0,
        };
        let labels = format!(
            "destination=\"{}\",connection=\"{}\"",
            label(&connection.destination),
            label(&id)
        );
        rows.push((labels, stats, lag));
    }
    header(
        &mut out,
        "switchyard_delivery_attempts_total",
        "counter",
        "Requests to vendors, by outcome (delivered, retry, error, failed).",
    );
    for (labels, stats, _) in &rows {
        for (outcome, n) in stats.attempts() {
            let _ = writeln!(
                out,
                "switchyard_delivery_attempts_total{{{labels},outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    header(
        &mut out,
        "switchyard_delivery_events_total",
        "counter",
        "Events a connection's worker read, by result (received, delivered, dead_lettered).",
    );
    for (labels, stats, _) in &rows {
        let t = stats.lifetime_totals();
        for (result, n) in [
            ("received", t.received),
            ("delivered", t.delivered),
            ("dead_lettered", t.dead_lettered),
        ] {
            let _ = writeln!(
                out,
                "switchyard_delivery_events_total{{{labels},result=\"{result}\"}} {n}"
            );
        }
    }
    header(
        &mut out,
        "switchyard_delivery_filtered_total",
        "counter",
        "Events not sent to a connection, by reason.",
    );
    for (labels, stats, _) in &rows {
        for (reason, n) in stats.lifetime_totals().filtered {
            let _ = writeln!(
                out,
                "switchyard_delivery_filtered_total{{{labels},reason=\"{}\"}} {n}",
                label(&reason)
            );
        }
    }
    header(
        &mut out,
        "switchyard_delivery_lag_events",
        "gauge",
        "Events of the source after the connection's cursor.",
    );
    for (labels, _, lag) in &rows {
        let _ = writeln!(out, "switchyard_delivery_lag_events{{{labels}}} {lag}");
    }
    header(
        &mut out,
        "switchyard_delivery_retrying_events",
        "gauge",
        "Events waiting for a retry now.",
    );
    for (labels, stats, _) in &rows {
        let _ = writeln!(
            out,
            "switchyard_delivery_retrying_events{{{labels}}} {}",
            stats.retrying_now()
        );
    }
    header(
        &mut out,
        "switchyard_delivery_latency_seconds",
        "histogram",
        "From the event's receipt to the vendor's 2xx.",
    );
    for (labels, stats, _) in &rows {
        let h = stats.lifetime_latency();
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            let le = *bound as f64 / 1000.0;
            let _ = writeln!(
                out,
                "switchyard_delivery_latency_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "switchyard_delivery_latency_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.total()
        );
        let _ = writeln!(
            out,
            "switchyard_delivery_latency_seconds_sum{{{labels}}} {}",
            h.sum_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "switchyard_delivery_latency_seconds_count{{{labels}}} {}",
            h.total()
        );
    }
    out
}
