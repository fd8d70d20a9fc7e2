//! The event mapping for device mode (`mapping.rs`), cases in `testdata/`.

pub mod device;
pub mod mapping;
