//! What delivery counts per connection: per-minute buckets over the last
//! day (received, filtered by reason, delivered, dead-lettered, failed
//! attempts, latency from receipt to the vendor's 2xx), the events waiting
//! for a retry now, and the recent failures with their request and
//! response.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;

/// Upper bounds of the latency buckets, in milliseconds: exponential, so
/// p50 and p99 are within about a fifth of the truth from 1 ms to hours.
pub const LATENCY_BOUNDS_MS: &[u64] = &[
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000, 14_400_000,
];

/// Counts of latencies per bucket (the last is everything above).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum_ms: u64,
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        }
        let at = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.counts[at] += 1;
        self.sum_ms += ms;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_ms += other.sum_ms;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket bound under which `q` (0..1) of the latencies fall.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    LATENCY_BOUNDS_MS
                        .get(i)
                        .copied()
                        .unwrap_or(*LATENCY_BOUNDS_MS.last().unwrap_or(&0)),
                );
            }
        }
        None
    }
}

#[derive(Debug, Clone, Default)]
struct Minute {
    /// Minutes since the Unix epoch.
    at: i64,
    received: u64,
    filtered: BTreeMap<String, u64>,
    delivered: u64,
    dead_lettered: u64,
    failed_attempts: u64,
    latency: Histogram,
}

/// A failed attempt, as the admin shows it (secrets already redacted).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub at: String,
    pub message_ids: Vec<String>,
    /// `retry` or `dead_letter`.
    pub outcome: &'static str,
    pub reason: String,
    pub request: String,
    pub response: Option<String>,
}

/// Totals over a window.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub received: u64,
    pub filtered: BTreeMap<String, u64>,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub failed_attempts: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
}

/// One minute of the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The minute's start, RFC 3339.
    pub minute: String,
    pub delivered: u64,
    pub failed: u64,
}

const DAY_MINUTES: i64 = 24 * 60;
const RECENT_FAILURES: usize = 50;

/// One connection's statistics.
#[derive(Default)]
pub struct ConnectionStats {
    minutes: Mutex<VecDeque<Minute>>,
    /// Events now waiting for a retry.
    pub retrying: AtomicI64,
    failures: Mutex<VecDeque<Failure>>,
    /// Lifetime totals, for Prometheus' counters.
    lifetime: Mutex<Totals>,
    latency_lifetime: Mutex<Histogram>,
    attempts: Mutex<BTreeMap<&'static str, u64>>,
}

fn now_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

impl ConnectionStats {
    fn with_minute(&self, f: impl FnOnce(&mut Minute)) {
        let at = now_minute();
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        if minutes.back().is_none_or(|m| m.at != at) {
            minutes.push_back(Minute {
                at,
                ..Minute::default()
            });
        }
        while minutes.front().is_some_and(|m| m.at <= at - DAY_MINUTES) {
            minutes.pop_front();
        }
        if let Some(m) = minutes.back_mut() {
            f(m);
        }
    }

    fn lifetime(&self, f: impl FnOnce(&mut Totals)) {
        f(&mut self.lifetime.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn received(&self, n: u64) {
        self.with_minute(|m| m.received += n);
        self.lifetime(|t| t.received += n);
    }

    pub fn filtered(&self, reason: &str, n: u64) {
        self.with_minute(|m| *m.filtered.entry(reason.to_string()).or_default() += n);
        self.lifetime(|t| *t.filtered.entry(reason.to_string()).or_default() += n);
    }

    pub fn delivered(&self, latencies_ms: &[u64]) {
        self.with_minute(|m| {
            m.delivered += latencies_ms.len() as u64;
            for ms in latencies_ms {
                m.latency.record(*ms);
            }
        });
        self.lifetime(|t| t.delivered += latencies_ms.len() as u64);
        let mut h = self
            .latency_lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for ms in latencies_ms {
            h.record(*ms);
        }
    }

    pub fn dead_lettered(&self, n: u64) {
        self.with_minute(|m| m.dead_lettered += n);
        self.lifetime(|t| t.dead_lettered += n);
    }

    /// An attempt's outcome: `delivered`, `retry`, `failed`, `error`.
    pub fn attempt(&self, outcome: &'static str) {
        *self
            .attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
        if outcome != "delivered" {
            self.with_minute(|m| m.failed_attempts += 1);
            self.lifetime(|t| t.failed_attempts += 1);
        }
    }

    pub fn failure(&self, failure: Failure) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() == RECENT_FAILURES {
            failures.pop_front();
        }
        failures.push_back(failure);
    }

    /// The recent failures, newest first.
    pub fn failures(&self) -> Vec<Failure> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.iter().rev().cloned().collect()
    }

    /// Totals over the last `minutes` minutes.
    pub fn totals(&self, minutes: i64) -> Totals {
        let since = now_minute() - minutes;
        let buckets = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let mut totals = Totals::default();
        let mut latency = Histogram::default();
        for m in buckets.iter().filter(|m| m.at > since) {
            totals.received += m.received;
            for (reason, n) in &m.filtered {
                *totals.filtered.entry(reason.clone()).or_default() += n;
            }
            totals.delivered += m.delivered;
            totals.dead_lettered += m.dead_lettered;
            totals.failed_attempts += m.failed_attempts;
            latency.merge(&m.latency);
        }
        totals.latency_p50_ms = latency.quantile(0.5);
        totals.latency_p99_ms = latency.quantile(0.99);
        totals
    }

    /// Delivered and failed (dead letters and failed attempts) per minute,
    /// the last `minutes`, oldest first, every minute present.
    pub fn chart(&self, minutes: i64) -> Vec<Point> {
        let now = now_minute();
        let buckets = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        (now - minutes + 1..=now)
            .map(|at| {
                let m = buckets.iter().find(|m| m.at == at);
                Point {
                    minute: chrono::DateTime::from_timestamp(at * 60, 0)
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    delivered: m.map_or(0, |m| m.delivered),
                    failed: m.map_or(0, |m| m.dead_lettered + m.failed_attempts),
                }
            })
            .collect()
    }

    pub fn lifetime_totals(&self) -> Totals {
        self.lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn lifetime_latency(&self) -> Histogram {
        self.latency_lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn attempts(&self) -> BTreeMap<&'static str, u64> {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn retrying_now(&self) -> i64 {
        self.retrying.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in [4, 4, 4, 4, 4, 4, 4, 4, 4, 900] {
            h.record(ms);
        }
        assert_eq!(h.quantile(0.5), Some(5));
        assert_eq!(h.quantile(0.99), Some(1_000));
        assert_eq!(h.total(), 10);
    }

    #[test]
    fn totals_and_the_chart_follow_what_was_counted() {
        let stats = ConnectionStats::default();
        stats.received(5);
        stats.filtered("integrations_off", 2);
        stats.delivered(&[10, 20]);
        stats.dead_lettered(1);
        stats.attempt("retry");
        let t = stats.totals(60);
        assert_eq!(
            (t.received, t.delivered, t.dead_lettered, t.failed_attempts),
            (5, 2, 1, 1)
        );
        assert_eq!(t.filtered.get("integrations_off"), Some(&2));
        let chart = stats.chart(60);
        assert_eq!(chart.len(), 60);
        let last = chart.last().unwrap();
        assert_eq!((last.delivered, last.failed), (2, 2));
    }
}
