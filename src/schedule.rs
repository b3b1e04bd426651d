//! Collector schedules: crontab lines as people write them, checked now, run by the daemon.
//!
//! The `cron` crate wants six or seven fields with seconds first and numbers Sunday as 1.
//! Users paste five-field crontab lines where Sunday is 0 (or 7), so five-field lines are
//! checked in their own syntax (errors quote the user's line and name the field), then
//! translated: a `0` seconds field is prepended and numeric day-of-week values are shifted.
//! crontab(5) fires on *either* day field when both are restricted (`0 9 1 * 1`: the 1st and
//! every Monday), where `cron` wants both; such a line becomes two schedules, merged.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written in the config.
    pub text: String,
    /// One schedule, or two whose times are merged (crontab's day-of-month OR day-of-week).
    schedules: Vec<cron::Schedule>,
}

/// The fields of a crontab line: name, range, and whether names (JAN, MON) are allowed.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Checks one crontab field in the user's own syntax: `*`, numbers, names (months and
/// weekdays), ranges `a-b`, lists `a,b` and steps `/n`.
fn check_field(line: &str, i: usize, field: &str) -> Result<(), String> {
    let (name, lo, hi) = FIELDS[i];
    let bad = |why: String| Err(format!("schedule {line:?}: {name} field {field:?}: {why}"));
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(n) if n >= 1 && n <= hi.max(1) => {}
                _ => {
                    return bad(format!(
                        "step {s:?} must be a number from 1 to {}",
                        hi.max(1)
                    ));
                }
            }
        }
        if range == "*" {
            continue;
        }
        for v in range.split('-') {
            if v.is_empty() {
                return bad("an empty value".to_owned());
            }
            if v.chars().all(|c| c.is_ascii_alphabetic()) && (i == 3 || i == 4) {
                continue; // JAN..DEC, SUN..SAT: the cron crate checks the names
            }
            match v.parse::<u32>() {
                Ok(n) if (lo..=hi).contains(&n) => {}
                Ok(n) => return bad(format!("{n} is out of range {lo}-{hi}")),
                Err(_) => return bad(format!("{v:?} is not a number")),
            }
        }
        if range.split('-').count() > 2 {
            return bad(format!("{range:?} is not a range a-b"));
        }
    }
    Ok(())
}

impl Schedule {
    /// Parses a 5-field crontab line, a 6-field line with seconds first, or `@hourly`-style
    /// shorthands.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let fields: Vec<&str> = t.split_whitespace().collect();
        let translated: Vec<String> = match fields.len() {
            1 if t.starts_with('@') => vec![t.to_owned()],
            5 => {
                for (i, f) in fields.iter().enumerate() {
                    check_field(t, i, f)?;
                }
                let dow = translate_dow(fields[4])?;
                let line = |dom: &str, dow: &str| {
                    format!("0 {} {} {dom} {} {dow}", fields[0], fields[1], fields[3])
                };
                // crontab(5): with both day fields restricted (neither starts with `*`),
                // a day matches if either does.
                if !fields[2].starts_with('*') && !fields[4].starts_with('*') {
                    vec![line(fields[2], "*"), line("*", &dow)]
                } else {
                    vec![line(fields[2], &dow)]
                }
            }
            6 => vec![t.to_owned()],
            n => {
                return Err(format!(
                    "schedule {t:?} has {n} fields; write a crontab line such as \"*/15 * * * *\" \
                     (minute hour day-of-month month day-of-week), 6 fields with seconds first, \
                     or @hourly/@daily/@weekly"
                ));
            }
        };
        let schedules = translated
            .iter()
            .map(|l| {
                cron::Schedule::from_str(l)
                    .map_err(|e| format!("invalid schedule {t:?}: {e}; example: \"0 3 * * 1-5\""))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let schedule = Schedule {
            text: t.to_owned(),
            schedules,
        };
        if schedule.after(&Utc::now()).next().is_none() {
            return Err(format!(
                "schedule {t:?} never fires (no date matches it, e.g. 30 February); \
                 example: \"0 0 28 2 *\""
            ));
        }
        Ok(schedule)
    }

    /// The times after `t`, in order.
    pub fn after<'a>(&'a self, t: &DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + 'a {
        let mut streams: Vec<_> = self
            .schedules
            .iter()
            .map(|s| s.after(t).peekable())
            .collect();
        std::iter::from_fn(move || {
            let next = streams.iter_mut().filter_map(|s| s.peek().copied()).min()?;
            for s in &mut streams {
                if s.peek() == Some(&next) {
                    s.next();
                }
            }
            Some(next)
        })
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Schedule::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Crontab numbers days 0–7 from Sunday (0 and 7 both Sunday); `cron` numbers 1–7.
fn translate_dow(field: &str) -> Result<String, String> {
    let shift = |n: &str| -> Result<String, String> {
        match n.parse::<u8>() {
            Ok(d @ 0..=6) => Ok((d + 1).to_string()),
            Ok(7) => Ok("1".to_owned()),
            Ok(d) => Err(format!("day of week {d} is out of range 0-7")),
            Err(_) => Ok(n.to_owned()), // names such as MON, and `*`
        }
    };
    field
        .split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            let range = match range.split_once('-') {
                // 5-7 (Fri..Sun) would become 6-1: spell it as a list instead.
                Some((a, "7")) => {
                    let a = shift(a)?;
                    let start: u8 = a.parse().unwrap_or(7);
                    (start..=7)
                        .map(|d| d.to_string())
                        .chain(["1".to_owned()])
                        .collect::<Vec<_>>()
                        .join(",")
                }
                Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
                None => shift(range)?,
            };
            Ok(match step {
                Some(s) => format!("{range}/{s}"),
                None => range,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Utc, Weekday};

    fn next(s: &str) -> chrono::DateTime<Utc> {
        let from = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(); // a Sunday
        Schedule::parse(s).unwrap().after(&from).next().unwrap()
    }

    #[test]
    fn crontab_lines_mean_what_crontab_means() {
        assert_eq!(next("*/15 * * * *").minute(), 15);
        let weekday = next("0 3 * * 1-5");
        assert_eq!((weekday.weekday(), weekday.hour()), (Weekday::Mon, 3));
        assert_eq!(next("0 3 * * 0").weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 7").weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 6-7").weekday(), Weekday::Sat);
        assert_eq!(next("30 0 3 * * *").second(), 30);
        assert!(Schedule::parse("@daily").is_ok());
    }

    /// Issue 12, item 2: with both day fields restricted, crontab fires on either.
    #[test]
    fn both_day_fields_fire_on_either_as_crontab_does() {
        let from = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(); // Sunday 22nd
        let s = Schedule::parse("0 9 1 * 1").unwrap();
        let next: Vec<_> = s.after(&from).take(4).collect();
        let days: Vec<(u32, Weekday)> = next.iter().map(|t| (t.day(), t.weekday())).collect();
        // Monday 23rd, Monday 30th, Tuesday 1st December, Monday 7th.
        assert_eq!(
            days,
            [
                (23, Weekday::Mon),
                (30, Weekday::Mon),
                (1, Weekday::Tue),
                (7, Weekday::Mon)
            ]
        );
        // A star in either day field keeps the other as the only day rule.
        let s = Schedule::parse("0 9 */2 * 1").unwrap();
        assert!(
            s.after(&from)
                .take(6)
                .all(|t| t.weekday() == Weekday::Mon && t.day() % 2 == 1)
        );
        // The same instant from both halves comes once.
        let s = Schedule::parse("0 9 7 12 1").unwrap();
        let t: Vec<_> = s.after(&from).take(3).collect();
        assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    }

    #[test]
    fn bad_lines_explain_themselves() {
        assert!(Schedule::parse("* * *").unwrap_err().contains("3 fields"));
        // Issue 11, item 8: a line no date can match is refused, not run never.
        let e = Schedule::parse("0 0 30 2 *").unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        assert!(Schedule::parse("0 0 29 2 *").is_ok(), "leap days exist");
        // Issue 12, item 2: errors in the user's own syntax, naming the field.
        let e = Schedule::parse("61 * * * *").unwrap_err();
        assert_eq!(
            e,
            "schedule \"61 * * * *\": minute field \"61\": 61 is out of range 0-59"
        );
        assert!(
            Schedule::parse("0 24 * * *")
                .unwrap_err()
                .contains("hour field")
        );
        assert!(
            Schedule::parse("0 0 0 * *")
                .unwrap_err()
                .contains("day of month field")
        );
        assert!(Schedule::parse("*/0 * * * *").unwrap_err().contains("step"));
        assert!(Schedule::parse("0 0 * * MON-FRI").is_ok());
        assert!(
            Schedule::parse("0 0 * * 9")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
