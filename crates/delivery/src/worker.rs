//! One connection's worker, and the sending they, replays and dead-letter
//! retries share.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value as Json;
use switchyard_catalog::{Definition, Mode, routing};
use switchyard_destinations::cloud::{Forwarder, Limits, Outcome, Request, Response, Settings};
use switchyard_store::{
    Connection, DeadLetter, DeliveryStore, Handled, NewDeadLetter, NewRetry, StoredEvent,
};
use tokio::sync::watch;

use crate::stats::{ConnectionStats, Failure};
use crate::{Engine, Inner, Replay, settings_of};

/// How many events a worker reads from the log at a time.
const READ_AHEAD: usize = 1000;
/// How much of a body a failure record keeps.
const KEEP_BYTES: usize = 4096;

pub(crate) struct Worker {
    engine: Engine,
    connection: watch::Receiver<Connection>,
    stop: watch::Receiver<bool>,
}

/// A vendor's answer, read whole.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let cut: String = body.chars().take(KEEP_BYTES).collect();
        let mut text = format!("HTTP {}\n", self.status);
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            if name == "retry-after" || name == "content-type" || name.starts_with("x-ratelimit") {
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
        text.push('\n');
        text.push_str(&cut);
        text
    }
}

pub(crate) trait Describe {
    fn describe(&self) -> String;
}

impl Describe for Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Delivered => "delivered".into(),
            Outcome::Retry { reason, after } => match after {
                Some(after) => format!("retry after {:.1} s: {reason}", after.as_secs_f64()),
                None => format!("retry: {reason}"),
            },
            Outcome::Failed { reason } => format!("failed: {reason}"),
            Outcome::Then(next) => format!("then {} {}", next.method, next.url),
        }
    }
}

/// The values of the connection's secret settings, longest first, to cut
/// out of everything delivery shows.
pub(crate) fn secrets(def: &Definition, settings: &Settings) -> Vec<String> {
    let mut secrets: Vec<String> = def
        .settings
        .iter()
        .filter(|s| s.secret)
        .filter_map(|s| settings.get(&s.key).and_then(Json::as_str))
        .filter(|v| v.len() >= 4)
        .map(str::to_string)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "[secret]");
    }
    out
}

/// A request as failure records and the tester show it: the credentials
/// of `Authorization`-like headers and every secret setting cut out.
pub(crate) fn describe_request(request: &Request, secrets: &[String]) -> String {
    let mut text = format!("{} {}\n", request.method, request.url);
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        let hidden =
            lower == "authorization" || lower.contains("api-key") || lower.contains("token");
        let value = if hidden { "[redacted]" } else { value.as_str() };
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    let body = request.body_text();
    text.extend(body.chars().take(KEEP_BYTES));
    redact(&text, secrets)
}

/// One attempt at a request: the outcome and, when the vendor answered,
/// its answer.
pub(crate) async fn attempt(
    inner: &Inner,
    forwarder: &dyn Forwarder,
    request: &Request,
) -> (Outcome, Option<Answer>) {
    if let Err(reason) = crate::outbound::check_url(&inner.config.allow, &request.url) {
        return (Outcome::Failed { reason }, None);
    }
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut builder = inner.http.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let sent = builder.body(request.body.clone()).send().await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            let reason = if e.is_timeout() {
                "the vendor did not answer in time".to_string()
            } else {
                format!("cannot reach the vendor: {}", error_chain(&e))
            };
            // A name the outbound policy refused cannot work by retrying.
            if reason.contains("SWITCHYARD_OUTBOUND_ALLOW") {
                return (Outcome::Failed { reason }, None);
            }
            return (
                Outcome::Retry {
                    after: None,
                    reason,
                },
                None,
            );
        }
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match response.bytes().await {
        Ok(body) => body.to_vec(),
        Err(e) => {
            let reason = format!("the vendor's answer broke off: {}", error_chain(&e));
            return (
                Outcome::Retry {
                    after: None,
                    reason,
                },
                None,
            );
        }
    };
    let outcome = forwarder.outcome(
        request,
        &Response {
            status,
            headers: &headers,
            body: &body,
        },
    );
    (
        outcome,
        Some(Answer {
            status,
            headers,
            body,
        }),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An event on its way: where it is in the log and what it is.
#[derive(Clone)]
pub(crate) struct Pending {
    pub seq: i64,
    pub message_id: String,
    pub json: Json,
    pub raw: String,
}

impl Pending {
    fn of(stored: &StoredEvent) -> Option<Pending> {
        let json: Json = serde_json::from_str(&stored.json).ok()?;
        Some(Pending {
            seq: stored.seq,
            message_id: json
                .get("messageId")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            raw: stored.json.clone(),
            json,
        })
    }

    fn latency_ms(&self) -> u64 {
        let received = self
            .json
            .get("receivedAt")
            .and_then(Json::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        match received {
            Some(at) => (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                .num_milliseconds()
                .max(0) as u64,
            None => 0,
        }
    }
}

/// How many times a request is sent in place before a batch is halved,
/// or a single event is set aside to be retried on its own.
const IN_PLACE_ATTEMPTS: u32 = 3;
/// How many events a connection sets aside with nothing delivered in
/// between: past that the destination is taken to be down, not the events
/// bad, and the worker waits on the event in hand (so an outage does not
/// turn the log into a pile of single retries).
const ASIDE_WITHOUT_DELIVERY: u32 = 5;

/// What sending left: how many events were delivered, and the dead
/// letters and set-aside retries it made.
#[derive(Default)]
pub(crate) struct Sent {
    pub delivered: u64,
    pub handled: Handled,
}

impl Sent {
    fn add(&mut self, other: Sent) {
        self.delivered += other.delivered;
        self.handled.extend(other.handled);
    }
}

/// Events in one request on their way, and their history.
#[derive(Clone, Copy)]
struct Try<'e> {
    events: &'e [&'e Pending],
    /// A refused (4xx) or persistently failing request may be cut up.
    may_split: bool,
    /// False for a follow-up request, so a vendor cannot lead the worker
    /// on forever.
    may_follow: bool,
    /// When these events first failed: the retry window runs from there.
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Attempts made before this one started (a set-aside retry's).
    attempts: u32,
}

/// Sends events for one connection, with the retry policy: what it needs
/// and what it has done.
pub(crate) struct Sender<'a> {
    pub inner: &'a Inner,
    pub connection_id: &'a str,
    pub forwarder: &'static dyn Forwarder,
    pub settings: &'a Settings,
    pub limits: Limits,
    pub secrets: Vec<String>,
    pub stats: &'a ConnectionStats,
    pub stop: Option<&'a watch::Receiver<bool>>,
    pub last_request: Option<Instant>,
    /// Whether events that keep failing may be set aside (the worker's
    /// sending; a replay or a dead-letter retry waits instead).
    pub may_set_aside: bool,
    /// One attempt per request: a retryable failure sets the events aside
    /// for later (sending set-aside retries).
    pub once: bool,
    /// Events set aside since something was last delivered.
    pub aside_since_delivery: u32,
}

/// The work was stopped (the connection was disabled or removed).
pub(crate) struct Stopped;

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl<'a> Sender<'a> {
    pub fn new(
        inner: &'a Inner,
        connection_id: &'a str,
        (def, forwarder): (&Definition, &'static dyn Forwarder),
        settings: &'a Settings,
        stats: &'a ConnectionStats,
        stop: Option<&'a watch::Receiver<bool>>,
    ) -> Sender<'a> {
        Sender {
            inner,
            connection_id,
            forwarder,
            settings,
            limits: forwarder.limits(settings),
            secrets: secrets(def, settings),
            stats,
            stop,
            last_request: None,
            may_set_aside: false,
            once: false,
            aside_since_delivery: 0,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| *s.borrow())
    }

    /// Waits `wait`, or less when stopped.
    async fn sleep(&mut self, wait: Duration) -> Result<(), Stopped> {
        match self.stop {
            None => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Some(stop) => {
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => Ok(()),
                    _ = stop.wait_for(|s| *s) => Err(Stopped),
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let config = &self.inner.config;
        let exp = config
            .backoff_min
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(config.backoff_max);
        // Jitter: between half and all of it.
        let factor = rand::rng().random_range(0.5..=1.0);
        capped.mul_f64(factor)
    }

    fn dead(
        &self,
        events: &[&Pending],
        reason: &str,
        request: Option<String>,
        response: Option<String>,
        attempts: u32,
    ) -> Sent {
        self.stats.dead_lettered(events.len() as u64);
        let dead = events
            .iter()
            .map(|e| NewDeadLetter {
                connection_id: self.connection_id.to_string(),
                seq: e.seq,
                message_id: e.message_id.clone(),
                event: e.raw.clone(),
                reason: redact(reason, &self.secrets),
                request: request.clone(),
                response: response.clone(),
                attempts: i64::from(attempts),
            })
            .collect();
        Sent {
            delivered: 0,
            handled: Handled {
                dead,
                retries: Vec::new(),
            },
        }
    }

    fn set_aside(
        &self,
        events: &[&Pending],
        reason: &str,
        since: chrono::DateTime<chrono::Utc>,
        wait: Duration,
        attempts: u32,
    ) -> Sent {
        let next = chrono::Utc::now()
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
        let retries = events
            .iter()
            .map(|e| NewRetry {
                connection_id: self.connection_id.to_string(),
                seq: e.seq,
                message_id: e.message_id.clone(),
                event: e.raw.clone(),
                reason: redact(reason, &self.secrets),
                attempts: i64::from(attempts),
                first_failed_at: stamp(since),
                next_at: stamp(next),
            })
            .collect();
        Sent {
            delivered: 0,
            handled: Handled {
                dead: Vec::new(),
                retries,
            },
        }
    }

    /// Delivers a batch of events routed to this connection.
    pub async fn deliver(&mut self, batch: &[Pending]) -> Result<Sent, Stopped> {
        let jsons: Vec<Json> = batch.iter().map(|p| p.json.clone()).collect();
        let built = self.forwarder.build(&jsons, self.settings);
        let mut sent = Sent::default();
        for (i, reason) in &built.skipped {
            if batch.get(*i).is_some() {
                self.stats.filtered(reason, 1);
            }
        }
        for (i, reason) in &built.rejected {
            if let Some(e) = batch.get(*i) {
                sent.add(self.dead(&[e], reason, None, None, 0));
            }
        }
        for request in &built.requests {
            let events: Vec<&Pending> = request
                .events
                .iter()
                .filter_map(|i| batch.get(*i))
                .collect();
            let attempt = Try {
                events: &events,
                may_split: true,
                may_follow: true,
                since: None,
                attempts: 0,
            };
            sent.add(self.send(request, attempt).await?);
        }
        Ok(sent)
    }

    /// Sends an event set aside earlier, once: delivered, dead-lettered,
    /// or set aside again for later.
    pub async fn deliver_set_aside(&mut self, retry: &NewRetry) -> Result<Sent, Stopped> {
        let Ok(json) = serde_json::from_str::<Json>(&retry.event) else {
            return Ok(Sent::default());
        };
        let pending = Pending {
            seq: retry.seq,
            message_id: retry.message_id.clone(),
            json,
            raw: retry.event.clone(),
        };
        let built = self
            .forwarder
            .build(std::slice::from_ref(&pending.json), self.settings);
        let mut sent = Sent::default();
        if let Some((_, reason)) = built.rejected.first() {
            return Ok(self.dead(&[&pending], reason, None, None, 0));
        }
        let events = [&pending];
        for request in &built.requests {
            let attempt = Try {
                events: &events,
                may_split: false,
                may_follow: true,
                since: parse_time(&retry.first_failed_at),
                attempts: u32::try_from(retry.attempts).unwrap_or(0),
            };
            sent.add(self.send(request, attempt).await?);
        }
        Ok(sent)
    }

    /// Sends one request until it is delivered, refused, out of time, or
    /// set aside.
    async fn send(&mut self, request: &Request, mut t: Try<'_>) -> Result<Sent, Stopped> {
        let mut here: u32 = 0;
        loop {
            if self.stopped() {
                return Err(Stopped);
            }
            if let Some(last) = self.last_request {
                let since = last.elapsed();
                if since < self.limits.min_interval {
                    self.sleep(self.limits.min_interval - since).await?;
                }
            }
            here += 1;
            let attempts = t.attempts + here;
            self.last_request = Some(Instant::now());
            let (outcome, answer) = attempt(self.inner, self.forwarder, request).await;
            let describe = || describe_request(request, &self.secrets);
            let response = answer.as_ref().map(|a| redact(&a.text(), &self.secrets));
            let ids = || t.events.iter().map(|e| e.message_id.clone()).collect();
            let outcome = match outcome {
                Outcome::Then(next) if t.may_follow => {
                    self.stats.attempt("then");
                    let follow = Try {
                        may_split: false,
                        may_follow: false,
                        attempts,
                        ..t
                    };
                    return Box::pin(self.send(&next, follow)).await;
                }
                Outcome::Then(next) => Outcome::Failed {
                    reason: format!(
                        "the vendor asked for yet another request ({} {})",
                        next.method, next.url
                    ),
                },
                other => other,
            };
            let failure = |outcome: &str, reason: &str| Failure {
                at: now(),
                message_ids: ids(),
                outcome: outcome.to_string(),
                reason: redact(reason, &self.secrets),
                request: describe(),
                response: response.clone(),
            };
            match outcome {
                Outcome::Then(_) => unreachable!("followed or failed above"),
                Outcome::Delivered => {
                    self.stats.attempt("delivered");
                    let latencies: Vec<u64> = t.events.iter().map(|e| e.latency_ms()).collect();
                    self.stats.delivered(&latencies);
                    self.aside_since_delivery = 0;
                    return Ok(Sent {
                        delivered: t.events.len() as u64,
                        handled: Handled::default(),
                    });
                }
                Outcome::Failed { reason } => {
                    self.stats.attempt("failed");
                    if t.may_split && t.events.len() > 1 {
                        // One refused event should not take the others
                        // with it: each goes again on its own.
                        return self.split(t.events, t.since).await;
                    }
                    self.stats.failure(failure("dead_letter", &reason));
                    return Ok(self.dead(t.events, &reason, Some(describe()), response, attempts));
                }
                Outcome::Retry { after, reason } => {
                    self.stats
                        .attempt(if answer.is_some() { "retry" } else { "error" });
                    let since = *t.since.get_or_insert_with(chrono::Utc::now);
                    let failing_for = (chrono::Utc::now() - since).to_std().unwrap_or_default();
                    if failing_for >= self.inner.config.retry_window {
                        self.stats.failure(failure("dead_letter", &reason));
                        let reason = format!("still failing after the retry window: {reason}");
                        return Ok(self.dead(
                            t.events,
                            &reason,
                            Some(describe()),
                            response,
                            attempts,
                        ));
                    }
                    let wait = after.unwrap_or_else(|| self.backoff(attempts));
                    if self.once {
                        self.stats.failure(failure("retry_later", &reason));
                        return Ok(self.set_aside(t.events, &reason, since, wait, attempts));
                    }
                    if here >= IN_PLACE_ATTEMPTS {
                        if t.may_split && t.events.len() > 1 {
                            // Perhaps one event fails them all: halves go
                            // on their own, down to the one.
                            self.stats.failure(failure("retry", &reason));
                            return self.halve(t.events, since).await;
                        }
                        if self.may_set_aside && self.aside_since_delivery < ASIDE_WITHOUT_DELIVERY
                        {
                            self.aside_since_delivery += 1;
                            self.stats.failure(failure("retry_later", &reason));
                            return Ok(self.set_aside(t.events, &reason, since, wait, attempts));
                        }
                    }
                    self.stats.failure(failure("retry", &reason));
                    let n = t.events.len() as i64;
                    self.stats.retrying.fetch_add(n, Ordering::Relaxed);
                    let slept = self.sleep(wait).await;
                    self.stats.retrying.fetch_sub(n, Ordering::Relaxed);
                    slept?;
                }
            }
        }
    }

    /// Builds and sends `events` again, with what they have been through.
    async fn resend(
        &mut self,
        events: &[&Pending],
        since: Option<chrono::DateTime<chrono::Utc>>,
        may_split: bool,
    ) -> Result<Sent, Stopped> {
        let jsons: Vec<Json> = events.iter().map(|e| e.json.clone()).collect();
        let built = self.forwarder.build(&jsons, self.settings);
        let mut sent = Sent::default();
        for request in &built.requests {
            let of: Vec<&Pending> = request
                .events
                .iter()
                .filter_map(|i| events.get(*i).copied())
                .collect();
            let attempt = Try {
                events: &of,
                may_split: may_split && of.len() > 1,
                may_follow: true,
                since,
                attempts: 0,
            };
            sent.add(Box::pin(self.send(request, attempt)).await?);
        }
        Ok(sent)
    }

    async fn split(
        &mut self,
        events: &[&Pending],
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Sent, Stopped> {
        let mut sent = Sent::default();
        for e in events {
            sent.add(self.resend(&[e], since, false).await?);
        }
        Ok(sent)
    }

    async fn halve(
        &mut self,
        events: &[&Pending],
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Sent, Stopped> {
        let (first, second) = events.split_at(events.len() / 2);
        let mut sent = self.resend(first, Some(since), true).await?;
        sent.add(self.resend(second, Some(since), true).await?);
        Ok(sent)
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Splits routed events into batches within the destination's limits.
fn batches(events: Vec<Pending>, limits: Limits) -> Vec<Vec<Pending>> {
    let mut out: Vec<Vec<Pending>> = Vec::new();
    let mut bytes = 0;
    for e in events {
        let size = e.raw.len();
        let full = out.last().is_none_or(|b| {
            b.len() >= limits.max_events.max(1)
                || (!b.is_empty() && bytes + size > limits.max_bytes)
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = out.last_mut() {
            b.push(e);
        }
    }
    out
}

impl Worker {
    pub(crate) fn new(
        engine: Engine,
        connection: watch::Receiver<Connection>,
        stop: watch::Receiver<bool>,
    ) -> Worker {
        Worker {
            engine,
            connection,
            stop,
        }
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Retries a store operation until it works or the worker stops.
    async fn store_retry<T, F, Fut>(&mut self, mut f: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, switchyard_store::StoreError>>,
    {
        loop {
            match f().await {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::warn!("delivery: storage error: {e}");
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.wait_for(|s| *s) => return None,
                    }
                }
            }
        }
    }

    pub(crate) async fn run(mut self) {
        let inner = self.engine.inner.clone();
        let deps = inner.deps.clone();
        let id = self.connection.borrow().id.clone();
        let source_id = self.connection.borrow().source_id.clone();
        let stats = self.engine.stats_of(&id);
        let mut appended = inner.appended.subscribe();

        // A connection without a cursor starts at the head of the log.
        let cursor = {
            let store = deps.store.clone();
            let id2 = id.clone();
            self.store_retry(|| {
                let store = store.clone();
                let id = id2.clone();
                async move { store.cursor(&id).await }
            })
            .await
        };
        let Some(cursor) = cursor else { return };
        let mut cursor = match cursor {
            Some(c) => c,
            None => {
                let log = deps.log.clone();
                let Some(head) = self
                    .store_retry(|| {
                        let log = log.clone();
                        async move { log.head().await }
                    })
                    .await
                else {
                    return;
                };
                let store = deps.store.clone();
                let id2 = id.clone();
                if self
                    .store_retry(|| {
                        let store = store.clone();
                        let id = id2.clone();
                        async move { store.advance(&id, head, Handled::default()).await }
                    })
                    .await
                    .is_none()
                {
                    return;
                }
                head
            }
        };

        let mut last_request = None;
        let mut aside_since_delivery = 0;
        loop {
            if self.stopped() {
                return;
            }
            appended.borrow_and_update();
            let connection = self.connection.borrow().clone();
            let Some((def, forwarder)) = crate::cloud_of(&deps.catalog, &connection.destination)
            else {
                return;
            };
            let settings = settings_of(&connection);
            let mut sender = Sender::new(
                &inner,
                &id,
                (def, forwarder),
                &settings,
                &stats,
                Some(&self.stop),
            );
            sender.last_request = last_request;
            sender.may_set_aside = true;
            sender.aside_since_delivery = aside_since_delivery;
            let handled = retry_set_aside(&deps.store, &self.stop, &mut sender).await;
            last_request = sender.last_request;
            aside_since_delivery = sender.aside_since_delivery;
            if handled.is_err() {
                return;
            }
            let events = match deps.log.read_after(&source_id, cursor, READ_AHEAD).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(connection = %id, "delivery: cannot read the log: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if events.is_empty() {
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = appended.changed() => {}
                    _ = tokio::time::sleep(inner.config.poll) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            }
            let limits = forwarder.limits(&settings);
            stats.received(events.len() as u64);
            let mut routed = Vec::new();
            let last_seq = events.last().map_or(cursor, |e| e.seq);
            for stored in &events {
                let Some(pending) = Pending::of(stored) else {
                    stats.filtered("unreadable", 1);
                    continue;
                };
                match routing::route(def, Mode::Cloud, &pending.json) {
                    Ok(()) => routed.push(pending),
                    Err(skip) => stats.filtered(skip.as_str(), 1),
                }
            }
            let mut stopped = false;
            let batches = batches(routed, limits);
            let mut done_seq = cursor;
            let mut handled = Handled::default();
            let mut saved_at = Instant::now();
            for (i, batch) in batches.iter().enumerate() {
                match sender.deliver(batch).await {
                    Ok(sent) => {
                        done_seq = batch.last().map_or(done_seq, |e| e.seq);
                        handled.extend(sent.handled);
                    }
                    Err(Stopped) => {
                        stopped = true;
                        break;
                    }
                }
                if i + 1 == batches.len() {
                    break;
                }
                // Progress is saved at the end of what was read, and
                // sooner when a batch left dead letters or retries (so
                // they show, and set-aside ones are retried) or a second
                // went by.
                if !handled.is_empty() || saved_at.elapsed() >= Duration::from_secs(1) {
                    let Some(()) = self.save(&id, done_seq, std::mem::take(&mut handled)).await
                    else {
                        return;
                    };
                    cursor = done_seq;
                    saved_at = Instant::now();
                }
            }
            last_request = sender.last_request;
            aside_since_delivery = sender.aside_since_delivery;
            if !stopped {
                done_seq = last_seq;
            }
            if done_seq > cursor || !handled.is_empty() {
                let Some(()) = self.save(&id, done_seq, handled).await else {
                    return;
                };
                cursor = done_seq;
            }
            if stopped {
                return;
            }
        }
    }

    /// Moves the cursor and keeps what the events left, retrying the
    /// store until it works; `None` when stopped first.
    async fn save(&self, id: &str, seq: i64, handled: Handled) -> Option<()> {
        let store = &self.engine.inner.deps.store;
        loop {
            match store.advance(id, seq, handled.clone()).await {
                Ok(()) => return Some(()),
                Err(e) => {
                    tracing::warn!(connection = %id, "delivery: cannot save the cursor: {e}");
                    if self.stopped() {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Sends the connection's set-aside events that are due, once each.
async fn retry_set_aside(
    store: &Arc<dyn DeliveryStore>,
    stop: &watch::Receiver<bool>,
    sender: &mut Sender<'_>,
) -> Result<(), Stopped> {
    let id = sender.connection_id.to_string();
    let due = match store.due_retries(&id, &now(), 100).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(connection = %id, "delivery: cannot read the retries: {e}");
            return Ok(());
        }
    };
    for retry in due {
        sender.once = true;
        let sent = sender.deliver_set_aside(&retry.retry).await;
        sender.once = false;
        let handled = sent?.handled;
        while let Err(e) = store
            .settle_retries(&id, &[retry.id], handled.clone())
            .await
        {
            tracing::warn!(connection = %id, "delivery: cannot save a retry: {e}");
            let mut stop = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return Err(Stopped),
            }
        }
    }
    Ok(())
}

/// A replay: the range's events sent with the same policy as the worker,
/// without moving the cursor; its dead letters are kept like the worker's.
pub(crate) async fn replay(engine: Engine, connection: Connection, mut progress: Replay) {
    let inner = engine.inner.clone();
    let deps = inner.deps.clone();
    let Some((def, forwarder)) = crate::cloud_of(&deps.catalog, &connection.destination) else {
        return;
    };
    let settings = settings_of(&connection);
    let stats = engine.stats_of(&connection.id);
    let mut sender = Sender::new(
        &inner,
        &connection.id,
        (def, forwarder),
        &settings,
        &stats,
        None,
    );
    let result: Result<(), String> = async {
        let mut at = deps
            .log
            .position_at(&connection.source_id, &progress.from)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let events = deps
                .log
                .read_after(&connection.source_id, at, READ_AHEAD)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last() else { break };
            at = last.seq;
            let mut routed = Vec::new();
            let mut past_end = false;
            for stored in &events {
                let Some(p) = Pending::of(stored) else {
                    continue;
                };
                let received = p
                    .json
                    .get("receivedAt")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                if received > progress.to.as_str() {
                    past_end = true;
                    break;
                }
                progress.read += 1;
                match routing::route(def, Mode::Cloud, &p.json) {
                    Ok(()) => routed.push(p),
                    Err(_) => progress.filtered += 1,
                }
            }
            for batch in batches(routed, sender.limits) {
                let Ok(sent) = sender.deliver(&batch).await else {
                    return Err("stopped".into());
                };
                progress.delivered += sent.delivered;
                progress.dead_lettered += sent.handled.dead.len() as u64;
                deps.store
                    .add_dead_letters(sent.handled.dead)
                    .await
                    .map_err(|e| e.to_string())?;
                engine.save_replay(&progress).await;
            }
            engine.save_replay(&progress).await;
            if past_end {
                break;
            }
        }
        Ok(())
    }
    .await;
    progress.done = true;
    progress.error = result.err();
    engine.save_replay(&progress).await;
}

/// Dead letters sent again: removed once handled, failures kept anew.
pub(crate) async fn retry_dead_letters(
    engine: Engine,
    connection: Connection,
    letters: Vec<DeadLetter>,
) {
    let inner = engine.inner.clone();
    let deps = inner.deps.clone();
    let Some((def, forwarder)) = crate::cloud_of(&deps.catalog, &connection.destination) else {
        return;
    };
    // The connection as it is now: the point of a retry is a fixed setting.
    let connection = match deps.config_store.connection(&connection.id).await {
        Ok(Some(c)) => c,
        _ => connection,
    };
    let settings = settings_of(&connection);
    let stats = engine.stats_of(&connection.id);
    let mut sender = Sender::new(
        &inner,
        &connection.id,
        (def, forwarder),
        &settings,
        &stats,
        None,
    );
    for chunk in letters.chunks(sender.limits.max_events.max(1)) {
        let pending: Vec<Pending> = chunk
            .iter()
            .filter_map(|d| {
                Some(Pending {
                    seq: d.seq,
                    message_id: d.message_id.clone(),
                    json: serde_json::from_str(&d.event).ok()?,
                    raw: d.event.clone(),
                })
            })
            .collect();
        let Ok(sent) = sender.deliver(&pending).await else {
            return;
        };
        let ids: Vec<i64> = chunk.iter().map(|d| d.id).collect();
        if let Err(e) = deps.store.add_dead_letters(sent.handled.dead).await {
            tracing::warn!("delivery: cannot keep a dead letter again: {e}");
            return;
        }
        if let Err(e) = deps
            .store
            .remove_dead_letters(&connection.id, Some(&ids))
            .await
        {
            tracing::warn!("delivery: cannot remove retried dead letters: {e}");
        }
    }
}
