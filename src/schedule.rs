//! Collector schedules: crontab lines as people write them, checked now, run by the daemon.
//!
//! The `cron` crate wants six or seven fields with seconds first and numbers Sunday as 1.
//! Users paste five-field crontab lines where Sunday is 0 (or 7), so five-field lines are
//! translated: a `0` seconds field is prepended and numeric day-of-week values are shifted.

use std::str::FromStr;

use serde::Deserialize;

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written in the config.
    pub text: String,
    /// The parsed schedule.
    pub schedule: cron::Schedule,
}

impl Schedule {
    /// Parses a 5-field crontab line, a 6-field line with seconds first, or `@hourly`-style
    /// shorthands.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let fields: Vec<&str> = t.split_whitespace().collect();
        let translated = match fields.len() {
            1 if t.starts_with('@') => t.to_owned(),
            5 => {
                let dow = translate_dow(fields[4])?;
                format!(
                    "0 {} {} {} {} {}",
                    fields[0], fields[1], fields[2], fields[3], dow
                )
            }
            6 => t.to_owned(),
            n => {
                return Err(format!(
                    "schedule {t:?} has {n} fields; write a crontab line such as \"*/15 * * * *\" \
                     (minute hour day-of-month month day-of-week), 6 fields with seconds first, \
                     or @hourly/@daily/@weekly"
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("invalid schedule {t:?}: {e}; example: \"0 3 * * 1-5\""))?;
        if schedule.upcoming(chrono::Utc).next().is_none() {
            return Err(format!(
                "schedule {t:?} never fires (no date matches it, e.g. 30 February); \
                 example: \"0 0 28 2 *\""
            ));
        }
        Ok(Schedule {
            text: t.to_owned(),
            schedule,
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
        Schedule::parse(s)
            .unwrap()
            .schedule
            .after(&from)
            .next()
            .unwrap()
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

    #[test]
    fn bad_lines_explain_themselves() {
        assert!(Schedule::parse("* * *").unwrap_err().contains("3 fields"));
        // Issue 11, item 8: a line no date can match is refused, not run never.
        let e = Schedule::parse("0 0 30 2 *").unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        assert!(Schedule::parse("0 0 29 2 *").is_ok(), "leap days exist");
        assert!(
            Schedule::parse("61 * * * *")
                .unwrap_err()
                .contains("invalid schedule")
        );
        assert!(
            Schedule::parse("0 0 * * 9")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
