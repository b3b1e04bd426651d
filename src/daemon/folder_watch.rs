//! Live folder watching for `filesystem` collectors with `watch = true`.
//!
//! inotify events are debounced (100 ms) into wake-ups of the collector's job, which waits
//! for the events to go quiet before it scans (see `job::settle`): a burst of thousands of
//! events causes one scan, and the scan's stat cache makes it cheap. Reads (including the scan's own) are ignored, as is anything under the
//! state directory, so the daemon never wakes itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::Notify;

/// How long events are gathered before the collector is woken.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// An active watch; dropping it stops watching.
pub struct FolderWatch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FolderWatch")
    }
}

/// Watches `root` recursively and wakes `wake` after changes outside `ignore`.
pub fn watch(root: &Path, ignore: &Path, wake: Arc<Notify>) -> Result<FolderWatch, String> {
    let ignore: PathBuf = std::fs::canonicalize(ignore).unwrap_or_else(|_| ignore.to_owned());
    let root_canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let relevant = events.iter().any(|e| {
                    !matches!(e.kind, EventKind::Access(_))
                        && e.paths.iter().any(|p| !p.starts_with(&ignore))
                });
                if relevant {
                    wake.notify_one();
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "folder watch error");
                }
                // Something may have been missed: a scan settles it.
                wake.notify_one();
            }
        }
    })
    .map_err(|e| e.to_string())?;
    debouncer
        .watch(&root_canon, RecursiveMode::Recursive)
        .map_err(|e| {
            format!("{e} (on Linux, raise fs.inotify.max_user_watches if the tree is large)")
        })?;
    Ok(FolderWatch {
        _debouncer: debouncer,
    })
}
