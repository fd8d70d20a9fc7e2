//! What delivery counts per connection: per-minute counts (received,
//! filtered by reason, delivered, dead-lettered, failed attempts, latency
//! from receipt to the vendor's 2xx) and recent failures with their
//! request and response, gathered here and kept in the delivery store, so
//! they survive a restart and read the same from the CLI and from every
//! replica; plus the events retried in place now and lifetime counters for
//! `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use switchyard_store::{FAILURES_KEPT, FailureRecord, StatsMinute};

/// Upper bounds of the latency buckets, in milliseconds: exponential, so
/// p50 and p99 are within about a fifth of the truth from 1 ms to hours.
pub const LATENCY_BOUNDS_MS: &[u64] = &[
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000, 14_400_000,
];

/// The bucket `ms` falls in (the last is everything above).
fn bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

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
        self.counts[bucket(ms)] += 1;
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

/// A failed attempt, as the admin shows it (secrets already redacted).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    pub at: String,
    pub message_ids: Vec<String>,
    /// `retry` (retried in place), `retry_later` (set aside to retry on
    /// its own) or `dead_letter`.
    pub outcome: String,
    pub reason: String,
    pub request: String,
    pub response: Option<String>,
}

impl From<FailureRecord> for Failure {
    fn from(f: FailureRecord) -> Failure {
        Failure {
            at: f.at,
            message_ids: f.message_ids,
            outcome: f.outcome,
            reason: f.reason,
            request: f.request,
            response: f.response,
        }
    }
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

pub(crate) fn now_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn histogram(m: &StatsMinute) -> Histogram {
    Histogram {
        counts: m.latency.iter().map(|n| count(*n)).collect(),
        sum_ms: count(m.latency_sum_ms),
    }
}

/// Totals of the stored minutes of the last `minutes` minutes.
pub fn totals(rows: &[StatsMinute], minutes: i64) -> Totals {
    let since = now_minute() - minutes;
    let mut totals = Totals::default();
    let mut latency = Histogram::default();
    for m in rows.iter().filter(|m| m.minute > since) {
        totals.received += count(m.received);
        for (reason, n) in &m.filtered {
            *totals.filtered.entry(reason.clone()).or_default() += count(*n);
        }
        totals.delivered += count(m.delivered);
        totals.dead_lettered += count(m.dead_lettered);
        totals.failed_attempts += count(m.failed_attempts);
        latency.merge(&histogram(m));
    }
    totals.latency_p50_ms = latency.quantile(0.5);
    totals.latency_p99_ms = latency.quantile(0.99);
    totals
}

/// Delivered and failed (dead letters and failed attempts) per minute,
/// the last `minutes`, oldest first, every minute present.
pub fn chart(rows: &[StatsMinute], minutes: i64) -> Vec<Point> {
    let now = now_minute();
    (now - minutes + 1..=now)
        .map(|at| {
            let m = rows.iter().find(|m| m.minute == at);
            Point {
                minute: chrono::DateTime::from_timestamp(at * 60, 0)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                delivered: m.map_or(0, |m| count(m.delivered)),
                failed: m.map_or(0, |m| count(m.dead_lettered + m.failed_attempts)),
            }
        })
        .collect()
}

/// One connection's statistics in this process: the counts not yet
/// stored (the engine stores them every second and before it reads
/// them), the events it retries in place now, and lifetime totals for
/// Prometheus' counters.
#[derive(Default)]
pub struct ConnectionStats {
    pending: Mutex<BTreeMap<i64, StatsMinute>>,
    pending_failures: Mutex<Vec<Failure>>,
    /// Events now waiting for a retry in place.
    pub retrying: AtomicI64,
    lifetime: Mutex<Totals>,
    latency_lifetime: Mutex<Histogram>,
    attempts: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnectionStats {
    fn with_minute(&self, f: impl FnOnce(&mut StatsMinute)) {
        let at = now_minute();
        let mut pending = lock(&self.pending);
        let m = pending.entry(at).or_insert_with(|| StatsMinute {
            minute: at,
            ..StatsMinute::default()
        });
        f(m);
    }

    fn lifetime(&self, f: impl FnOnce(&mut Totals)) {
        f(&mut lock(&self.lifetime));
    }

    pub fn received(&self, n: u64) {
        self.with_minute(|m| m.received += n as i64);
        self.lifetime(|t| t.received += n);
    }

    pub fn filtered(&self, reason: &str, n: u64) {
        self.with_minute(|m| *m.filtered.entry(reason.to_string()).or_default() += n as i64);
        self.lifetime(|t| *t.filtered.entry(reason.to_string()).or_default() += n);
    }

    pub fn delivered(&self, latencies_ms: &[u64]) {
        let mut h = Histogram::default();
        for ms in latencies_ms {
            h.record(*ms);
        }
        self.with_minute(|m| {
            m.delivered += latencies_ms.len() as i64;
            m.latency.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
            for ms in latencies_ms {
                m.latency[bucket(*ms)] += 1;
                m.latency_sum_ms += *ms as i64;
            }
        });
        self.lifetime(|t| t.delivered += latencies_ms.len() as u64);
        lock(&self.latency_lifetime).merge(&h);
    }

    pub fn dead_lettered(&self, n: u64) {
        self.with_minute(|m| m.dead_lettered += n as i64);
        self.lifetime(|t| t.dead_lettered += n);
    }

    /// An attempt's outcome: `delivered`, `retry`, `failed`, `error`,
    /// `then`.
    pub fn attempt(&self, outcome: &'static str) {
        *lock(&self.attempts).entry(outcome).or_default() += 1;
        if outcome != "delivered" && outcome != "then" {
            self.with_minute(|m| m.failed_attempts += 1);
            self.lifetime(|t| t.failed_attempts += 1);
        }
    }

    pub fn failure(&self, failure: Failure) {
        let mut failures = lock(&self.pending_failures);
        if failures.len() == FAILURES_KEPT {
            failures.remove(0);
        }
        failures.push(failure);
    }

    /// What was counted since the last call, to store.
    pub(crate) fn take(&self, connection_id: &str) -> (Vec<StatsMinute>, Vec<FailureRecord>) {
        let minutes = std::mem::take(&mut *lock(&self.pending))
            .into_values()
            .map(|mut m| {
                m.connection_id = connection_id.to_string();
                m
            })
            .collect();
        let failures = std::mem::take(&mut *lock(&self.pending_failures))
            .into_iter()
            .map(|f| FailureRecord {
                connection_id: connection_id.to_string(),
                at: f.at,
                message_ids: f.message_ids,
                outcome: f.outcome,
                reason: f.reason,
                request: f.request,
                response: f.response,
            })
            .collect();
        (minutes, failures)
    }

    /// Counts [`ConnectionStats::take`] took that could not be stored,
    /// back for the next try.
    pub(crate) fn put_back(&self, minutes: Vec<StatsMinute>, failures: Vec<FailureRecord>) {
        let mut pending = lock(&self.pending);
        for m in minutes {
            pending
                .entry(m.minute)
                .or_insert_with(|| StatsMinute {
                    minute: m.minute,
                    ..StatsMinute::default()
                })
                .merge(&m);
        }
        drop(pending);
        let mut kept = lock(&self.pending_failures);
        let mut all: Vec<Failure> = failures.into_iter().map(Failure::from).collect();
        all.append(&mut kept);
        let cut = all.len().saturating_sub(FAILURES_KEPT);
        *kept = all.split_off(cut);
    }

    pub fn lifetime_totals(&self) -> Totals {
        lock(&self.lifetime).clone()
    }

    pub fn lifetime_latency(&self) -> Histogram {
        lock(&self.latency_lifetime).clone()
    }

    pub fn attempts(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.attempts).clone()
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
    fn what_is_counted_is_taken_once_and_totals_follow_it() {
        let stats = ConnectionStats::default();
        stats.received(5);
        stats.filtered("integrations_off", 2);
        stats.delivered(&[10, 20]);
        stats.dead_lettered(1);
        stats.attempt("retry");
        stats.attempt("then");
        let (rows, failures) = stats.take("con_1");
        assert!(failures.is_empty());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].connection_id, "con_1");
        let t = totals(&rows, 60);
        assert_eq!(
            (t.received, t.delivered, t.dead_lettered, t.failed_attempts),
            (5, 2, 1, 1)
        );
        assert_eq!(t.filtered.get("integrations_off"), Some(&2));
        assert_eq!((t.latency_p50_ms, t.latency_p99_ms), (Some(10), Some(20)));
        let points = chart(&rows, 60);
        assert_eq!(points.len(), 60);
        let last = points.last().unwrap();
        assert_eq!((last.delivered, last.failed), (2, 2));
        // Taken once: the next take has nothing, until put back.
        assert!(stats.take("con_1").0.is_empty());
        stats.put_back(rows.clone(), Vec::new());
        stats.received(1);
        let again = stats.take("con_1").0;
        assert_eq!(again[0].received, 6);
        // A minute older than the window is not in its totals.
        let mut old = rows[0].clone();
        old.minute -= 61;
        assert_eq!(totals(&[old], 60), Totals::default());
    }
}
