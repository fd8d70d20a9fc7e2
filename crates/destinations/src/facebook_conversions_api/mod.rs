//! Meta's Conversions API: the cloud forwarder (`cloud.rs`), which shares
//! the Facebook Pixel's device mapping.

#[cfg(feature = "cloud")]
pub mod cloud;
