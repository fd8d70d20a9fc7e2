//! Customer.io: the event mapping for device mode (`mapping.rs`, cases in
//! `testdata/`), its adapter (`device.rs`), and cloud mode's forwarder to the
//! Track API's v2 batch endpoint (`cloud.rs`, cases in `testdata/cloud/`).

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod device;
pub mod mapping;
