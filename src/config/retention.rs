//! `[retention]`: how long content is kept, per source, kind or control, and when the
//! daemon applies the rules (docs/erasure.md).

use serde::Deserialize;

use super::ControlId;
use crate::schedule::Schedule;

/// The daemon's default: daily at 03:30.
pub const DEFAULT_SCHEDULE: &str = "30 3 * * *";

/// The `[retention]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// When the daemon applies the rules (a crontab line; default daily 03:30).
    #[serde(default)]
    pub schedule: Option<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
}

/// A period such as `90d`, `12w` or `7y` (a year is 365 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub chrono::Duration);

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Keep::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Keep {
    /// Parses `<number><d|w|y>`.
    pub fn parse(s: &str) -> Result<Keep, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: i64 = num
            .parse()
            .ok()
            .filter(|n| *n > 0 && *n < 10_000)
            .ok_or_else(|| format!("keep {s:?}: write a number and d, w or y, e.g. \"7y\""))?;
        let days = match unit.trim() {
            "d" => n,
            "w" => n * 7,
            "y" => n * 365,
            other => {
                return Err(format!(
                    "keep {s:?}: unit {other:?} is not d, w or y (a year is 365 days)"
                ));
            }
        };
        Ok(Keep(chrono::Duration::days(days)))
    }
}

/// One `[[retention.rules]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Entries of this source.
    pub source: Option<String>,
    /// Entries of this kind.
    pub kind: Option<String>,
    /// Entries mapped to any of these controls.
    #[serde(default)]
    pub controls: Vec<ControlId>,
    /// How long content is kept.
    pub keep: Keep,
    /// Why (recorded in each erasure entry).
    pub reason: String,
    /// Also current versions (counted from when they were collected); by default only
    /// versions no longer current, counted from when they stopped being current.
    #[serde(default)]
    pub current: bool,
}

impl RetentionConfig {
    /// Checks the rules and the schedule.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.schedule {
            Schedule::parse(s).map_err(|e| format!("[retention] schedule: {e}"))?;
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.source.is_none() && r.kind.is_none() && r.controls.is_empty() {
                return Err(format!(
                    "[[retention.rules]] {}: give source, kind or controls; a rule over everything would erase all content",
                    i + 1
                ));
            }
            if r.reason.trim().is_empty() {
                return Err(format!(
                    "[[retention.rules]] {}: reason is empty; name the policy (it is recorded with each erasure)",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// The schedule the daemon applies the rules on.
    pub fn schedule(&self) -> Result<Schedule, String> {
        Schedule::parse(self.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE))
    }
}
