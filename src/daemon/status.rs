//! The daemon's one-line status, for systemd's `STATUS=` and the logs.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::ledger::reader::Reader;
use crate::ledger::state::StateDir;

#[derive(Debug, Default)]
struct Inner {
    last_run: Option<(String, String)>,
    failing: BTreeSet<String>,
}

/// What the daemon reports about itself.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<Inner>,
}

impl Status {
    /// Records that `collector` finished a run.
    pub fn ran(&self, collector: &str, ok: bool) {
        if let Ok(mut s) = self.inner.lock() {
            s.last_run = Some((collector.to_owned(), crate::ledger::now_rfc3339()));
            if ok {
                s.failing.remove(collector);
            } else {
                s.failing.insert(collector.to_owned());
            }
        }
    }

    /// Forgets a collector that was removed by a reload.
    pub fn forget(&self, collector: &str) {
        if let Ok(mut s) = self.inner.lock() {
            s.failing.remove(collector);
        }
    }

    /// `"<n> entries; last run <collector> at <time>; failing: <names|none>"`.
    pub fn line(&self, state: &StateDir) -> String {
        let entries = Reader::open(state)
            .and_then(|r| r.size())
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        let Ok(s) = self.inner.lock() else {
            return format!("{entries} entries");
        };
        let last = s.last_run.as_ref().map_or_else(
            || "no run yet".to_owned(),
            |(c, t)| format!("last run {c} at {t}"),
        );
        let failing = if s.failing.is_empty() {
            "none".to_owned()
        } else {
            s.failing.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        format!("{entries} entries; {last}; failing: {failing}")
    }
}
