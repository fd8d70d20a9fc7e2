//! Getting events to the tracking API: a queue kept in localStorage,
//! retries with backoff and jitter, optional batching, and a last flush
//! with `sendBeacon` when the page goes away.
//!
//! Each tab keeps its queue under its own key with a heartbeat. A tab that
//! starts claims the queues of tabs that are gone (under a Web Lock where
//! the browser has them), so a reload or a crash loses nothing, and two
//! live tabs never send each other's events. An event keeps its
//! `messageId` across retries and claims; the server drops repeats.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use crate::{browser, ids, js, storage};

/// Attempts before an event is given up.
const MAX_ATTEMPTS: u32 = 10;
/// Requests in flight at once (without batching).
const MAX_IN_FLIGHT: usize = 6;
/// A tab whose heartbeat is older than this is gone.
const STALE_MS: f64 = 5_000.0;
const HEARTBEAT_MS: f64 = 1_000.0;
/// What `sendBeacon` and `keepalive` may carry in all.
const BEACON_BYTES: usize = 60_000;

/// Batching: up to `size` events or `bytes` bytes per request, sent at
/// the latest `timeout` ms after the first one waits.
#[derive(Clone, Copy)]
pub(crate) struct Batching {
    pub size: usize,
    pub bytes: usize,
    pub timeout: f64,
}

pub(crate) struct Item {
    /// The event's JSON, without `sentAt` and `writeKey`.
    pub json: String,
    pub path: String,
    pub attempts: u32,
    pub next_at: f64,
    pub in_flight: bool,
}

pub(crate) struct Queue {
    pub api_host: String,
    /// The write key as a JSON string (quoted).
    write_key_json: String,
    tab: String,
    prefix: String,
    pub items: Vec<Item>,
    pub batching: Option<Batching>,
    in_flight: usize,
    /// When the next flush timer fires, if one is set.
    timer_at: Option<f64>,
    /// Called with `(message, detail)` when an event is given up.
    pub on_error: Option<OnError>,
    /// A write of the queue to localStorage is scheduled.
    dirty: bool,
}

pub(crate) type Shared = Rc<RefCell<Queue>>;

/// Told `(message, event)` when an event is given up.
pub(crate) type OnError = Rc<dyn Fn(&str, JsValue)>;

thread_local! {
    static FLUSH: RefCell<Option<Function>> = const { RefCell::new(None) };
    static PERSIST: RefCell<Option<Function>> = const { RefCell::new(None) };
}

fn hb_key(prefix: &str, tab: &str) -> String {
    [prefix, "hb.", tab].concat()
}

fn q_key(prefix: &str, tab: &str) -> String {
    [prefix, "q.", tab].concat()
}

impl Queue {
    pub(crate) fn new(api_host: String, write_key: &str) -> Queue {
        let tab = browser::random_uuid();
        Queue {
            api_host,
            write_key_json: js::stringify(&JsValue::from_str(write_key)).unwrap_or_default(),
            prefix: ["sy.", write_key, "."].concat(),
            tab,
            items: Vec::new(),
            batching: None,
            in_flight: 0,
            timer_at: None,
            on_error: None,
            dirty: false,
        }
    }

    /// The event with `writeKey` and `sentAt` spliced in.
    fn wire(&self, json: &str, sent_at: &str) -> String {
        let rest = json.strip_prefix('{').unwrap_or(json);
        let sep = if rest.starts_with('}') { "" } else { "," };
        [
            "{\"writeKey\":",
            &self.write_key_json,
            ",\"sentAt\":\"",
            sent_at,
            "\"",
            sep,
            rest,
        ]
        .concat()
    }

    fn batch_body(&self, events: &[&str], sent_at: &str) -> String {
        let mut s = [
            "{\"writeKey\":",
            &self.write_key_json,
            ",\"sentAt\":\"",
            sent_at,
            "\",\"batch\":[",
        ]
        .concat();
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(e);
        }
        s.push_str("]}");
        s
    }

    /// Schedules a write of the queue: many changes in one task (a loop
    /// of `track` calls, a burst of replies) cost one write, not one each.
    fn mark_dirty(&mut self) {
        if self.dirty {
            return;
        }
        self.dirty = true;
        PERSIST.with(|f| {
            if let Some(f) = f.borrow().as_ref() {
                browser::set_timeout(f, 0.0);
            }
        });
    }

    /// Writes this tab's queue and heartbeat to localStorage.
    pub(crate) fn persist(&mut self) {
        self.dirty = false;
        let key = q_key(&self.prefix, &self.tab);
        if self.items.is_empty() {
            storage::remove_item(&key);
            return;
        }
        let list = Array::new();
        for item in &self.items {
            let entry = Array::new();
            entry.push(&JsValue::from_str(&item.json));
            entry.push(&JsValue::from_str(&item.path));
            entry.push(&JsValue::from(item.attempts));
            list.push(&entry);
        }
        if let Some(s) = js::stringify(&list) {
            storage::set_item(&key, &s);
        }
        self.heartbeat();
    }

    fn heartbeat(&self) {
        storage::set_item(
            &hb_key(&self.prefix, &self.tab),
            &ids::decimal(browser::now_ms() as u64),
        );
    }

    /// The queue keys of tabs that are gone (no heartbeat for a while, or
    /// marked gone when their page was hidden).
    fn orphans(&self) -> Vec<String> {
        let now = browser::now_ms();
        let q_prefix = [&self.prefix, "q."].concat();
        storage::keys_with_prefix(&q_prefix)
            .into_iter()
            .filter(|key| {
                let tab = key.strip_prefix(&q_prefix).unwrap_or_default();
                let beat = storage::get_item(&hb_key(&self.prefix, tab))
                    .map(|v| js_sys::Number::from(JsValue::from_str(&v)).value_of())
                    .filter(|v| !v.is_nan())
                    .unwrap_or(0.0);
                tab != self.tab && now - beat >= STALE_MS
            })
            .collect()
    }

    /// Takes over the queues of tabs that are gone.
    fn claim_orphans(&mut self) -> usize {
        let q_prefix = [&self.prefix, "q."].concat();
        let mut claimed = 0;
        for key in self.orphans() {
            let tab = key.strip_prefix(&q_prefix).unwrap_or_default();
            let hb = hb_key(&self.prefix, tab);
            let list = storage::get_item(&key).and_then(|s| js::parse(&s));
            storage::remove_item(&key);
            storage::remove_item(&hb);
            let Some(list) = list.filter(Array::is_array) else {
                continue;
            };
            for entry in Array::from(&list).iter() {
                let (Some(json), Some(path)) = (
                    js_sys::Reflect::get_u32(&entry, 0)
                        .ok()
                        .and_then(|v| v.as_string()),
                    js_sys::Reflect::get_u32(&entry, 1)
                        .ok()
                        .and_then(|v| v.as_string()),
                ) else {
                    continue;
                };
                let attempts = js_sys::Reflect::get_u32(&entry, 2)
                    .ok()
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0) as u32;
                self.items.push(Item {
                    json,
                    path,
                    attempts,
                    next_at: 0.0,
                    in_flight: false,
                });
                claimed += 1;
            }
        }
        if claimed > 0 {
            self.persist();
        }
        claimed
    }

    /// When the page goes away: hand what is waiting to `sendBeacon`, in
    /// batches within its size limit, and mark this tab gone so the next
    /// page claims the queue at once (the server drops what arrives twice).
    fn on_page_hide(&mut self) {
        if browser::online() && !self.items.is_empty() {
            let now = browser::now_iso();
            let url = [&self.api_host, "/v1/b"].concat();
            let mut batch: Vec<&str> = Vec::new();
            let mut bytes = 0;
            for item in &self.items {
                if bytes + item.json.len() > BEACON_BYTES && !batch.is_empty() {
                    browser::beacon(&url, &self.batch_body(&batch, &now));
                    batch.clear();
                    bytes = 0;
                }
                bytes += item.json.len();
                batch.push(&item.json);
            }
            if !batch.is_empty() {
                browser::beacon(&url, &self.batch_body(&batch, &now));
            }
        }
        self.persist();
        storage::set_item(&hb_key(&self.prefix, &self.tab), "0");
    }
}

/// Backoff before attempt `attempts + 1`: exponential from 500 ms, at most
/// a minute, with ±50% jitter so many clients do not retry in step.
pub(crate) fn backoff(attempts: u32, random: f64) -> f64 {
    let base = (500.0 * 2f64.powi(attempts.min(16) as i32)).min(60_000.0);
    base * (0.5 + random)
}

/// What to do after a reply.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Done,
    Retry,
    Drop,
}

pub(crate) fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Done,
        0 | 408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Drop,
    }
}

pub(crate) fn start(queue: &Shared) {
    {
        let shared = queue.clone();
        let f = Closure::<dyn FnMut()>::new(move || {
            shared.borrow_mut().timer_at = None;
            flush(&shared);
        });
        FLUSH
            .with(|slot| *slot.borrow_mut() = Some(f.as_ref().unchecked_ref::<Function>().clone()));
        f.forget();
    }
    claim(queue);
    let q = queue.clone();
    browser::on_window("pagehide", move || q.borrow_mut().on_page_hide());
    let q = queue.clone();
    browser::on_window("pageshow", move || q.borrow_mut().persist());
    let shared = queue.clone();
    let write = Closure::<dyn FnMut()>::new(move || {
        let mut q = shared.borrow_mut();
        if q.dirty {
            q.persist();
        }
    });
    PERSIST
        .with(|slot| *slot.borrow_mut() = Some(write.as_ref().unchecked_ref::<Function>().clone()));
    write.forget();
    // A tab that closed while others stay open leaves its queue behind:
    // the others take it over, checking at each heartbeat and when the
    // browser comes back online.
    let q = queue.clone();
    browser::on_window("online", move || {
        claim_if_orphans(&q);
        flush(&q);
    });
    let q = queue.clone();
    browser::set_interval(
        move || {
            q.borrow().heartbeat();
            claim_if_orphans(&q);
        },
        HEARTBEAT_MS,
    );
    queue.borrow().heartbeat();
}

fn claim_if_orphans(queue: &Shared) {
    let any = !queue.borrow().orphans().is_empty();
    if any {
        claim(queue);
    }
}

/// Claims orphaned queues, under a Web Lock when the browser has them.
fn claim(queue: &Shared) {
    let q = queue.clone();
    let run = move || {
        if q.borrow_mut().claim_orphans() > 0 {
            flush(&q);
        }
    };
    let locks = Some(js::get(&js::global("navigator"), "locks")).filter(JsValue::is_object);
    let request = locks.as_ref().and_then(|l| js::method(l, "request"));
    match (locks, request) {
        (Some(locks), Some(request)) => {
            let name = JsValue::from_str(&[&queue.borrow().prefix, "claim"].concat());
            let cb = Closure::once_into_js(run);
            let _ = js::call(&request, &locks, &[name, cb]);
        }
        _ => run(),
    }
}

pub(crate) fn enqueue(queue: &Shared, json: String, path: &str) {
    let batching = {
        let mut q = queue.borrow_mut();
        q.items.push(Item {
            json,
            path: path.to_string(),
            attempts: 0,
            next_at: 0.0,
            in_flight: false,
        });
        q.mark_dirty();
        q.batching
    };
    match batching {
        Some(b) => {
            let full = {
                let q = queue.borrow();
                let waiting: Vec<&Item> = q.items.iter().filter(|i| !i.in_flight).collect();
                waiting.len() >= b.size
                    || waiting.iter().map(|i| i.json.len()).sum::<usize>() >= b.bytes
            };
            if full {
                flush(queue);
            } else {
                schedule(queue, b.timeout);
            }
        }
        None => flush(queue),
    }
}

fn schedule(queue: &Shared, delay: f64) {
    let at = browser::now_ms() + delay;
    {
        let mut q = queue.borrow_mut();
        if q.timer_at.is_some_and(|t| t <= at) {
            return;
        }
        q.timer_at = Some(at);
    }
    FLUSH.with(|f| {
        if let Some(f) = f.borrow().as_ref() {
            browser::set_timeout(f, delay);
        }
    });
}

/// Sends what is due, within the in-flight limit.
pub(crate) fn flush(queue: &Shared) {
    if !browser::online() {
        return;
    }
    let now = browser::now_ms();
    let mut sends: Vec<(Vec<usize>, String, String, u32)> = Vec::new();
    let mut next: Option<f64> = None;
    {
        let mut q = queue.borrow_mut();
        let sent_at = browser::now_iso();
        let due: Vec<usize> = (0..q.items.len())
            .filter(|&i| !q.items[i].in_flight)
            .filter(|&i| {
                let at = q.items[i].next_at;
                if at > now {
                    next = Some(next.map_or(at, |n: f64| n.min(at)));
                }
                at <= now
            })
            .collect();
        match q.batching {
            Some(b) => {
                let mut start = 0;
                while start < due.len() {
                    let mut end = start;
                    let mut bytes = 0;
                    while end < due.len()
                        && end - start < b.size
                        && (end == start || bytes + q.items[due[end]].json.len() <= b.bytes)
                    {
                        bytes += q.items[due[end]].json.len();
                        end += 1;
                    }
                    let group = due[start..end].to_vec();
                    let events: Vec<&str> =
                        group.iter().map(|&i| q.items[i].json.as_str()).collect();
                    let body = q.batch_body(&events, &sent_at);
                    let retry = group
                        .iter()
                        .map(|&i| q.items[i].attempts)
                        .max()
                        .unwrap_or(0);
                    let url = [&q.api_host, "/v1/b"].concat();
                    sends.push((group, url, body, retry));
                    start = end;
                }
            }
            None => {
                for &i in &due {
                    if q.in_flight + sends.len() >= MAX_IN_FLIGHT {
                        break;
                    }
                    let item = &q.items[i];
                    let url = [&q.api_host, "/v1/", &item.path].concat();
                    sends.push((vec![i], url, q.wire(&item.json, &sent_at), item.attempts));
                }
            }
        }
        for (group, ..) in &sends {
            for &i in group {
                q.items[i].in_flight = true;
            }
        }
        q.in_flight += sends.len();
    }
    if let Some(at) = next {
        schedule(queue, (at - now).max(0.0));
    }
    for (group, url, body, retry) in sends {
        let ids: Vec<String> = {
            let q = queue.borrow();
            group.iter().map(|&i| q.items[i].json.clone()).collect()
        };
        let queue = queue.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let reply = browser::post(&url, &body, retry).await;
            settle(&queue, &ids, reply);
        });
    }
}

/// Applies a reply to the items it was for, found again by their JSON
/// (indices may have moved while the request was in flight).
fn settle(queue: &Shared, sent: &[String], reply: browser::Reply) {
    let verdict = verdict(reply.status);
    let mut dropped = Vec::new();
    let mut retry_in = None;
    {
        let mut q = queue.borrow_mut();
        q.in_flight = q.in_flight.saturating_sub(1);
        let now = browser::now_ms();
        let mut keep = Vec::with_capacity(q.items.len());
        for mut item in std::mem::take(&mut q.items) {
            if !(item.in_flight && sent.contains(&item.json)) {
                keep.push(item);
                continue;
            }
            item.in_flight = false;
            match verdict {
                Verdict::Done => {}
                Verdict::Retry if item.attempts + 1 < MAX_ATTEMPTS => {
                    item.attempts += 1;
                    let wait = reply
                        .retry_after
                        .unwrap_or_else(|| backoff(item.attempts - 1, js_sys::Math::random()));
                    item.next_at = now + wait;
                    retry_in = Some(retry_in.map_or(wait, |w: f64| w.min(wait)));
                    keep.push(item);
                }
                _ => dropped.push(item.json),
            }
        }
        q.items = keep;
        q.mark_dirty();
    }
    let on_error = queue.borrow().on_error.clone();
    if let Some(on_error) = on_error {
        for json in dropped {
            let detail = js::parse(&json).unwrap_or(JsValue::NULL);
            let message = if verdict == Verdict::Drop {
                [
                    "delivery refused with status ",
                    &ids::decimal(reply.status.into()),
                ]
                .concat()
            } else {
                "delivery failed after 10 attempts".to_string()
            };
            on_error(&message, detail);
        }
    }
    match retry_in {
        Some(wait) => schedule(queue, wait),
        None => flush(queue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(backoff(0, 0.5), 500.0);
        assert_eq!(backoff(1, 0.5), 1000.0);
        assert_eq!(backoff(3, 0.5), 4000.0);
        assert_eq!(backoff(0, 0.0), 250.0);
        assert_eq!(backoff(0, 1.0), 750.0);
        assert_eq!(backoff(30, 0.5), 60_000.0);
    }

    #[test]
    fn only_retryable_statuses_are_retried() {
        for (status, v) in [
            (200, Verdict::Done),
            (204, Verdict::Done),
            (0, Verdict::Retry),
            (408, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
            (400, Verdict::Drop),
            (401, Verdict::Drop),
            (413, Verdict::Drop),
        ] {
            assert_eq!(verdict(status), v, "{status}");
        }
    }
}
