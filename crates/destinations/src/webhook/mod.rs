//! A webhook of the site owner's: every event, as Segment's JSON, to a URL.

pub mod cloud;
