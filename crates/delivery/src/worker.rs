//! One connection's worker, and the sending they, replays and dead-letter
//! retries share.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value as Json;
use switchyard_catalog::{Definition, Mode, routing};
use switchyard_destinations::cloud::{Forwarder, Limits, Outcome, Request, Response, Settings};
use switchyard_store::{Connection, DeadLetter, NewDeadLetter, StoredEvent};
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
}

/// The work was stopped (the connection was disabled or removed).
pub(crate) struct Stopped;

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
    ) -> Vec<NewDeadLetter> {
        self.stats.dead_lettered(events.len() as u64);
        events
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
            .collect()
    }

    /// Delivers a batch of events routed to this connection; returns the
    /// dead letters it made and how many were delivered.
    pub async fn deliver(
        &mut self,
        batch: &[Pending],
    ) -> Result<(Vec<NewDeadLetter>, u64), Stopped> {
        let jsons: Vec<Json> = batch.iter().map(|p| p.json.clone()).collect();
        let built = self.forwarder.build(&jsons, self.settings);
        let mut dead = Vec::new();
        let mut delivered = 0;
        for (i, reason) in &built.skipped {
            if batch.get(*i).is_some() {
                self.stats.filtered(reason, 1);
            }
        }
        for (i, reason) in &built.rejected {
            if let Some(e) = batch.get(*i) {
                dead.extend(self.dead(&[e], reason, None, None, 0));
            }
        }
        for request in &built.requests {
            let events: Vec<&Pending> = request
                .events
                .iter()
                .filter_map(|i| batch.get(*i))
                .collect();
            let (more, n) = self.send(request, &events, true).await?;
            dead.extend(more);
            delivered += n;
        }
        Ok((dead, delivered))
    }

    /// Sends one request until it is delivered, refused, or out of time.
    async fn send(
        &mut self,
        request: &Request,
        events: &[&Pending],
        may_split: bool,
    ) -> Result<(Vec<NewDeadLetter>, u64), Stopped> {
        self.send_once(request, events, may_split, true).await
    }

    /// [`Sender::send`]; `may_follow` is false for a follow-up request, so
    /// a vendor cannot lead the worker on forever.
    async fn send_once(
        &mut self,
        request: &Request,
        events: &[&Pending],
        may_split: bool,
        may_follow: bool,
    ) -> Result<(Vec<NewDeadLetter>, u64), Stopped> {
        let first = Instant::now();
        let mut attempts: u32 = 0;
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
            attempts += 1;
            self.last_request = Some(Instant::now());
            let (outcome, answer) = attempt(self.inner, self.forwarder, request).await;
            let describe = || describe_request(request, &self.secrets);
            let response = answer.as_ref().map(|a| redact(&a.text(), &self.secrets));
            let ids = || events.iter().map(|e| e.message_id.clone()).collect();
            let outcome = match outcome {
                Outcome::Then(next) if may_follow => {
                    self.stats.attempt("then");
                    return Box::pin(self.send_once(&next, events, false, false)).await;
                }
                Outcome::Then(next) => Outcome::Failed {
                    reason: format!(
                        "the vendor asked for yet another request ({} {})",
                        next.method, next.url
                    ),
                },
                other => other,
            };
            match outcome {
                Outcome::Then(_) => unreachable!("followed or failed above"),
                Outcome::Delivered => {
                    self.stats.attempt("delivered");
                    let latencies: Vec<u64> = events.iter().map(|e| e.latency_ms()).collect();
                    self.stats.delivered(&latencies);
                    return Ok((Vec::new(), events.len() as u64));
                }
                Outcome::Failed { reason } => {
                    self.stats.attempt("failed");
                    if may_split && events.len() > 1 {
                        // One refused event should not take the others
                        // with it: each goes again on its own.
                        return self.split(events).await;
                    }
                    self.stats.failure(Failure {
                        at: now(),
                        message_ids: ids(),
                        outcome: "dead_letter",
                        reason: redact(&reason, &self.secrets),
                        request: describe(),
                        response: response.clone(),
                    });
                    return Ok((
                        self.dead(events, &reason, Some(describe()), response, attempts),
                        0,
                    ));
                }
                Outcome::Retry { after, reason } => {
                    self.stats
                        .attempt(if answer.is_some() { "retry" } else { "error" });
                    let out_of_time = first.elapsed() >= self.inner.config.retry_window;
                    self.stats.failure(Failure {
                        at: now(),
                        message_ids: ids(),
                        outcome: if out_of_time { "dead_letter" } else { "retry" },
                        reason: redact(&reason, &self.secrets),
                        request: describe(),
                        response: response.clone(),
                    });
                    if out_of_time {
                        let reason = format!("still failing after the retry window: {reason}");
                        return Ok((
                            self.dead(events, &reason, Some(describe()), response, attempts),
                            0,
                        ));
                    }
                    let wait = after.unwrap_or_else(|| self.backoff(attempts));
                    let n = events.len() as i64;
                    self.stats.retrying.fetch_add(n, Ordering::Relaxed);
                    let slept = self.sleep(wait).await;
                    self.stats.retrying.fetch_sub(n, Ordering::Relaxed);
                    slept?;
                }
            }
        }
    }

    async fn split(&mut self, events: &[&Pending]) -> Result<(Vec<NewDeadLetter>, u64), Stopped> {
        let mut dead = Vec::new();
        let mut delivered = 0;
        for e in events {
            let built = self
                .forwarder
                .build(std::slice::from_ref(&e.json), self.settings);
            for request in &built.requests {
                let (more, n) = Box::pin(self.send(request, &[e], false)).await?;
                dead.extend(more);
                delivered += n;
            }
        }
        Ok((dead, delivered))
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
                        async move { store.advance(&id, head, Vec::new()).await }
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
        loop {
            if self.stopped() {
                return;
            }
            appended.borrow_and_update();
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
            let connection = self.connection.borrow().clone();
            let Some((def, forwarder)) = crate::cloud_of(&deps.catalog, &connection.destination)
            else {
                return;
            };
            let settings = settings_of(&connection);
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
            let mut sender = Sender::new(
                &inner,
                &id,
                (def, forwarder),
                &settings,
                &stats,
                Some(&self.stop),
            );
            sender.last_request = last_request;
            let mut stopped = false;
            let batches = batches(routed, limits);
            let mut done_seq = cursor;
            let mut dead_all: Vec<Vec<NewDeadLetter>> = Vec::new();
            for batch in &batches {
                match sender.deliver(batch).await {
                    Ok((dead, _)) => {
                        done_seq = batch.last().map_or(done_seq, |e| e.seq);
                        dead_all.push(dead);
                    }
                    Err(Stopped) => {
                        stopped = true;
                        break;
                    }
                }
            }
            last_request = sender.last_request;
            if !stopped {
                done_seq = last_seq;
            }
            let dead: Vec<NewDeadLetter> = dead_all.into_iter().flatten().collect();
            if done_seq > cursor || !dead.is_empty() {
                let store = deps.store.clone();
                let id2 = id.clone();
                let saved = loop {
                    match store.advance(&id2, done_seq, dead.clone()).await {
                        Ok(()) => break true,
                        Err(e) => {
                            tracing::warn!(connection = %id, "delivery: cannot save the cursor: {e}");
                            if self.stopped() {
                                break false;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                if saved {
                    cursor = done_seq;
                }
            }
            if stopped {
                return;
            }
        }
    }
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
                let Ok((dead, delivered)) = sender.deliver(&batch).await else {
                    return Err("stopped".into());
                };
                progress.delivered += delivered;
                progress.dead_lettered += dead.len() as u64;
                deps.store
                    .add_dead_letters(dead)
                    .await
                    .map_err(|e| e.to_string())?;
                engine.set_replay(progress.clone());
            }
            engine.set_replay(progress.clone());
            if past_end {
                break;
            }
        }
        Ok(())
    }
    .await;
    progress.done = true;
    progress.error = result.err();
    engine.set_replay(progress);
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
        let Ok((dead, _)) = sender.deliver(&pending).await else {
            return;
        };
        let ids: Vec<i64> = chunk.iter().map(|d| d.id).collect();
        if let Err(e) = deps.store.add_dead_letters(dead).await {
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
