//! Each event as Segment's JSON to the site owner's URL, as Segment's
//! Webhooks destination sends it: one event a request (the body is the
//! event), or batched (the body a JSON array of events). With a shared
//! secret, `X-Signature` carries the hex HMAC-SHA256 of the body, so the
//! receiver can check the request came from here. The receiver dedupes by
//! the event's `messageId`.

use crate::cloud::{Built, Forwarder, Json, Limits, Request, Settings, hmac_sha256_hex, setting};

pub struct Cloud;

/// The most events in one batched request.
const MAX_BATCH: usize = 1000;

fn batched(settings: &Settings) -> bool {
    settings.get("batch").and_then(Json::as_bool).unwrap_or(false)
}

fn batch_size(settings: &Settings) -> usize {
    let n = settings
        .get("batchSize")
        .and_then(Json::as_f64)
        .unwrap_or(100.0);
    (n as usize).clamp(1, MAX_BATCH)
}

fn request(settings: &Settings, body: &Json, events: Vec<usize>) -> Request {
    let mut request = Request::post_json(setting(settings, "url", ""), body, events);
    request.method = match setting(settings, "method", "POST") {
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        _ => "POST",
    };
    if let Some(Json::Object(headers)) = settings.get("headers") {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                request.headers.push((name.clone(), value.to_string()));
            }
        }
    }
    let secret = setting(settings, "sharedSecret", "");
    if !secret.is_empty() {
        let signature = hmac_sha256_hex(secret, &request.body);
        request = request.header("X-Signature", signature);
    }
    request
}

impl Forwarder for Cloud {
    fn limits(&self, settings: &Settings) -> Limits {
        if batched(settings) {
            Limits::batch(batch_size(settings), 4 << 20)
        } else {
            Limits::batch(1, 4 << 20)
        }
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let requests = if batched(settings) {
            vec![request(
                settings,
                &Json::Array(events.to_vec()),
                (0..events.len()).collect(),
            )]
        } else {
            events
                .iter()
                .enumerate()
                .map(|(i, e)| request(settings, e, vec![i]))
                .collect()
        };
        Built {
            requests,
            ..Built::default()
        }
    }
}
