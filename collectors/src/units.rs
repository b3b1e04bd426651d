//! Units written in configs: durations such as `30s` or `10m`.

use serde::Deserialize;

/// A duration such as `10m`, `30s`, `1h`, `2d` or `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub std::time::Duration);

impl Interval {
    /// Parses `<number><unit>` with units ms, s, m, h, d.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid duration {s:?}: write a number and a unit, e.g. \"10m\"")
        })?;
        let secs = |m: u64| std::time::Duration::from_secs(n.saturating_mul(m));
        let d = match unit.trim() {
            "ms" => std::time::Duration::from_millis(n),
            "s" => secs(1),
            "m" | "min" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            other => {
                return Err(format!(
                    "invalid duration unit {other:?} in {s:?}: use ms, s, m, h or d"
                ));
            }
        };
        if d.is_zero() {
            return Err(format!("duration {s:?} must be longer than zero"));
        }
        Ok(Interval(d))
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s).map_err(serde::de::Error::custom)
    }
}
