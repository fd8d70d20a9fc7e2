//! A webhook of the site owner's: every event, as Segment's JSON, to a URL.

#[cfg(feature = "cloud")]
pub mod cloud;
