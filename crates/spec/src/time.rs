use chrono::{DateTime, SecondsFormat, Utc};

/// Parses an ISO-8601 / RFC 3339 date as clients send it (`Z` or an
/// offset, any number of fractional digits).
pub(crate) fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats as Segment does: UTC, milliseconds, `Z`.
pub(crate) fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
