//! The event mapping for device mode (`mapping.rs`), cases in `testdata/`;
//! the device adapter (`device.rs`); the cloud forwarder to PostHog's
//! capture API (`cloud.rs`), sharing the mapping, cases in
//! `testdata/cloud/`.

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod device;
pub mod mapping;
