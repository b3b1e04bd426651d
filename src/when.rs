//! Times as users write them on the command line and in API queries: a date (`2026-06-30`,
//! the whole day) or an RFC 3339 time.

use chrono::{DateTime, Duration, NaiveDate, Utc};

fn parse_time(s: &str) -> Result<(DateTime<Utc>, bool), String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok((d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(), true));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| (t.with_timezone(&Utc), false))
        .map_err(|_| format!("{s:?} is not a date: write YYYY-MM-DD or an RFC 3339 time"))
}

/// Parses a lower bound (inclusive).
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s).map(|(t, _)| t)
}

/// Parses an upper bound, returned as the exclusive end: a date covers its whole day.
pub fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s).map(|(t, whole_day)| {
        t + if whole_day {
            Duration::days(1)
        } else {
            Duration::seconds(1)
        }
    })
}

/// Parses a coverage time: the end of a date's day, or the exact time given.
pub fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    parse_until(s).map(|t| t - Duration::seconds(1))
}
