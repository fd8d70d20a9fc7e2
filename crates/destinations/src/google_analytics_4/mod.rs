//! The event mapping for device mode (`mapping.rs`), cases in `testdata/`,
//! shared by cloud mode's Measurement Protocol forwarder (`cloud.rs`).

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod device;
pub mod mapping;
