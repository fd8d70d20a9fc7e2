//! Segment's event model as Switchyard accepts it on the tracking API.
//!
//! This crate parses request bodies (single calls and batches), validates
//! them, and normalises each event into the stored form: a `messageId`,
//! `receivedAt`, and a `timestamp` corrected for the client's clock skew.
//! It does no I/O; the server decides what a [`SpecError`] means in HTTP.

mod error;
mod event;
mod time;

pub use error::SpecError;
pub use event::{Batch, EventType, Mode, Normalized, parse_batch, parse_single};

/// Largest accepted event, serialised, in bytes (Segment's limit).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Largest accepted batch body, in bytes (Segment's limit).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
