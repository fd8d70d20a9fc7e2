//! Slack: the cloud forwarder (`cloud.rs`), one message per chosen event
//! to an incoming webhook.

#[cfg(feature = "cloud")]
pub mod cloud;
