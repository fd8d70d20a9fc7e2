//! What keeps the public tracking API from being turned against the
//! server: a rate per write key (a token bucket of events), a bound on
//! requests in flight, and a deadline on each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{AppError, AppState};

/// Events a write key may send per second, with bursts of twice that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limits {
    rate: Option<Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

/// Events per second per write key by default: far above what a site
/// sends, low enough that one key cannot take the whole server.
pub const DEFAULT_RATE: u32 = 20_000;
pub const DEFAULT_IN_FLIGHT: usize = 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(DEFAULT_RATE, DEFAULT_IN_FLIGHT, DEFAULT_TIMEOUT)
    }
}

impl Limits {
    /// `rate` events per second per write key (0: no limit), at most
    /// `in_flight` tracking requests at once, each within `timeout`.
    pub fn new(rate: u32, in_flight: usize, timeout: Duration) -> Limits {
        Limits {
            rate: (rate > 0).then(|| Rate {
                per_second: f64::from(rate),
                burst: 2.0 * f64::from(rate),
            }),
            buckets: Mutex::new(HashMap::new()),
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight.max(1))),
            timeout,
        }
    }

    /// Takes `events` from `key`'s bucket, or says how long until they
    /// would fit. A batch larger than a burst takes a whole burst.
    pub fn take(&self, key: &str, events: usize) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let want = (events as f64).min(rate.burst);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= want {
            bucket.tokens -= want;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (want - bucket.tokens) / rate.per_second,
            ))
        }
    }
}

/// Seconds for `Retry-After`: at least one.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The bound on tracking requests in flight and each one's deadline.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(permit) = state.limits.in_flight.clone().try_acquire_owned() else {
        state.metrics.refused("busy");
        return AppError::Busy { retry_after: 1 }.into_response();
    };
    let response = match tokio::time::timeout(state.limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.refused("timeout");
            AppError::Timeout.into_response()
        }
    };
    drop(permit);
    response
}

/// The encodings a tracking body may come in; anything else is refused
/// as every refusal is, before the body is read.
pub async fn encodings(request: Request, next: Next) -> Response {
    for value in request.headers().get_all(header::CONTENT_ENCODING) {
        let value = value.to_str().unwrap_or("?");
        for coding in value.split(',').map(str::trim) {
            let known = ["gzip", "x-gzip", "br", "deflate", "identity", ""]
                .iter()
                .any(|k| coding.eq_ignore_ascii_case(k));
            if !known {
                return AppError::UnsupportedEncoding(coding.to_string()).into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_takes_a_burst_then_refills_at_the_rate() {
        let limits = Limits::new(10, 8, DEFAULT_TIMEOUT);
        assert_eq!(limits.take("a", 20), Ok(()));
        let wait = limits.take("a", 5).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(limits.take("b", 20), Ok(()), "keys have their own buckets");
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(limits.take("a", 2), Ok(()));
        // Larger than a burst: waits for a whole burst, never forever.
        assert!(limits.take("c", 1_000).is_ok());
        assert!(limits.take("c", 1_000).unwrap_err() <= Duration::from_secs(2));
        assert_eq!(
            Limits::new(0, 8, DEFAULT_TIMEOUT).take("a", 1_000_000),
            Ok(())
        );
        assert_eq!(retry_after(Duration::from_millis(10)), 1);
        assert_eq!(retry_after(Duration::from_millis(2_100)), 3);
    }
}
