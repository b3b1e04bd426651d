//! Sidecars: `<file>.evident.toml` beside a document gives controls, a title and an
//! effective date to files that cannot carry front matter (PDF, spreadsheets, images).
//!
//! ```toml
//! controls = ["A.5.3", "A.5.4"]
//! title = "Fraud model impact assessment"
//! effective_date = 2026-01-15
//! ```

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The suffix that makes a file a sidecar (never recorded as a document itself).
pub const SUFFIX: &str = ".evident.toml";
/// Larger sidecars are refused.
const MAX_LEN: u64 = 64 << 10;

/// What a sidecar says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sidecar {
    /// Control ids.
    pub controls: Vec<String>,
    /// Title.
    pub title: Option<String>,
    /// Effective date.
    pub effective_date: Option<NaiveDate>,
    /// A marker of its content: a changed sidecar makes its document be looked at again.
    pub marker: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    effective_date: Option<toml::Value>,
}

/// The sidecar path of `file`.
pub fn path_for(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(SUFFIX);
    PathBuf::from(s)
}

/// Reads the sidecar of `file`: `Ok(None)` without one, `Err` with what to fix.
pub fn read(file: &Path) -> Result<Option<Sidecar>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let p = path_for(file);
    // No link followed, no FIFO waited on: what is checked is what is read.
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let not_regular = || {
        format!(
            "sidecar {} is not a regular file of at most 64 KiB; ignored",
            p.display()
        )
    };
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(&p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(not_regular());
        }
        Err(e) => return Err(format!("cannot read sidecar {}: {e}", p.display())),
    };
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat sidecar {}: {e}", p.display()))?;
    if !meta.is_file() || meta.len() > MAX_LEN {
        return Err(not_regular());
    }
    let mut text = String::new();
    f.take(MAX_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read sidecar {}: {e}", p.display()))?;
    let raw: Raw = toml::from_str(&text)
        .map_err(|e| format!("invalid sidecar {}: {}; ignored", p.display(), e.message()))?;
    let effective_date = match raw.effective_date {
        None => None,
        Some(v) => {
            let s = match &v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => other.to_string(),
            };
            Some(
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                    format!(
                        "sidecar {}: effective_date {s:?} is not YYYY-MM-DD; ignored",
                        p.display()
                    )
                })?,
            )
        }
    };
    let marker = Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Some(Sidecar {
        controls: raw.controls,
        title: raw.title,
        effective_date,
        marker,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_parse_and_errors_say_what() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("aia.pdf");
        std::fs::write(&f, b"%PDF").unwrap();
        assert_eq!(read(&f).unwrap(), None);
        std::fs::write(
            path_for(&f),
            "controls = [\"A.5.3\"]\ntitle = \"Fraud AIA\"\neffective_date = 2026-01-15\n",
        )
        .unwrap();
        let s = read(&f).unwrap().unwrap();
        assert_eq!(s.controls, ["A.5.3"]);
        assert_eq!(s.title.as_deref(), Some("Fraud AIA"));
        assert_eq!(s.effective_date, NaiveDate::from_ymd_opt(2026, 1, 15));
        std::fs::write(path_for(&f), "effective_date = \"15/01/2026\"\n").unwrap();
        assert!(read(&f).unwrap_err().contains("is not YYYY-MM-DD"));
        std::fs::write(path_for(&f), "colour = 1\n").unwrap();
        assert!(read(&f).unwrap_err().contains("unknown field `colour`"));
        std::fs::write(path_for(&f), "controls = [").unwrap();
        assert!(read(&f).unwrap_err().contains("invalid sidecar"));
    }
}
