//! Alerts: tell people when a control turns stale or missing, a collector keeps failing,
//! the newest checkpoint grows old, anchoring fails, or the periodic self-verification
//! fails; and tell them again when it clears.
//!
//! The daemon evaluates the conditions on a timer ([`Alerts::tick`]). Each condition is a
//! key (`control:A.6.2.4:stale`); a key that appears fires once, a key that goes away
//! resolves once. Transitions wait in a queue per target and go out together, at most one
//! message per target every `min_interval`; a delivery that fails stays queued for the next
//! tick. What is active and queued survives restarts (`alerts-state.json`), so a restart
//! neither repeats nor loses an alert.

pub mod send;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "alerts-state.json";

pub use crate::config::alerts::{AlertConfig, AlertKind, Event};

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Stable identity (`control:A.6.2.4:stale`).
    pub key: String,
    /// Its event.
    pub event: Event,
    /// One line for people.
    pub summary: String,
}

/// A condition that fired or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The condition's key.
    pub key: String,
    /// Its event.
    pub event: Event,
    /// `firing` or `resolved`.
    pub state: String,
    /// One line for people.
    pub summary: String,
    /// When it was seen (RFC 3339).
    pub at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Active conditions: key → (event, summary).
    active: BTreeMap<String, (Event, String)>,
    /// Per target: transitions not yet delivered, and when it last got a message.
    queues: BTreeMap<String, Queue>,
    /// Whether the first evaluation happened.
    started: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Queue {
    pending: Vec<Transition>,
    last_sent: Option<String>,
    /// When a delivery last failed: the next try waits [`RETRY_AFTER_FAILURE`].
    #[serde(default)]
    last_failed: Option<String>,
}

/// How long a target that refused or could not be reached is left alone.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The time until `since` + `wait` (zero when passed), `since` being RFC 3339.
fn left(since: Option<&str>, wait: Duration, now: chrono::DateTime<chrono::Utc>) -> Duration {
    since
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(Duration::ZERO, |l| {
            wait.saturating_sub(now.signed_duration_since(l).to_std().unwrap_or_default())
        })
}

/// What the evaluation reads: the facts of the moment.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Per control or clause: (id, status name, why), stale and missing only.
    pub controls: Vec<(String, &'static str, String)>,
    /// Per collector: (name, failures in a row, last error).
    pub collectors: Vec<(String, u32, Option<String>)>,
    /// Entries not covered by a checkpoint.
    pub uncovered: u64,
    /// How long the oldest of them has waited for one.
    pub uncovered_for: Option<Duration>,
    /// The last anchoring error, while anchoring fails.
    pub anchoring_error: Option<String>,
    /// The last self-verification's problem, while it fails.
    pub self_verify_error: Option<String>,
}

/// The conditions `facts` make true for `target`'s thresholds.
pub fn conditions(facts: &Facts, target: &AlertConfig) -> Vec<Condition> {
    let mut out = Vec::new();
    for (id, status, why) in &facts.controls {
        let event = if *status == "stale" {
            Event::Stale
        } else {
            Event::Missing
        };
        out.push(Condition {
            key: format!("control:{id}:{status}"),
            event,
            summary: format!("{id} is {status}: {why}"),
        });
    }
    for (name, failures, error) in &facts.collectors {
        if *failures >= target.collector_failures() {
            out.push(Condition {
                key: format!("collector:{name}"),
                event: Event::Collector,
                summary: format!(
                    "collector {name} failed {failures} runs in a row{}",
                    error.as_ref().map_or(String::new(), |e| format!(": {e}"))
                ),
            });
        }
    }
    // Judged by the oldest entry still waiting for a checkpoint: an old checkpoint over an
    // unchanged ledger is not a problem, and a new ledger has nothing waiting yet.
    let limit = target.checkpoint_max_age();
    if facts.uncovered > 0 && facts.uncovered_for.is_some_and(|a| a > limit) {
        out.push(Condition {
            key: "checkpoint:old".into(),
            event: Event::Checkpoint,
            summary: format!(
                "{} entries have waited more than {}s for a signed checkpoint (is the daemon signing? an export holding the lock?)",
                facts.uncovered,
                limit.as_secs()
            ),
        });
    }
    if let Some(e) = &facts.anchoring_error {
        out.push(Condition {
            key: "anchoring".into(),
            event: Event::Anchoring,
            summary: format!("timestamping the newest checkpoint failed: {e}"),
        });
    }
    if let Some(e) = &facts.self_verify_error {
        out.push(Condition {
            key: "self_verify".into(),
            event: Event::SelfVerify,
            summary: format!("the periodic self-verification failed: {e}"),
        });
    }
    out.retain(|c| target.wants(c.event));
    out
}

/// The alert engine of one daemon.
#[derive(Debug)]
pub struct Alerts {
    targets: Vec<AlertConfig>,
    path: PathBuf,
    saved: Saved,
    origin: String,
}

impl Alerts {
    /// The engine for `targets`, with its state in `state_dir`.
    pub fn new(targets: Vec<AlertConfig>, state_dir: &Path, origin: &str) -> Self {
        let path = state_dir.join(STATE_FILE);
        let saved = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Alerts {
            targets,
            path,
            saved,
            origin: origin.to_owned(),
        }
    }

    /// Replaces the targets (a reload); queues of removed targets are dropped.
    pub fn set_targets(&mut self, targets: Vec<AlertConfig>) {
        let names: BTreeSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        self.saved.queues.retain(|k, _| names.contains(k.as_str()));
        self.targets = targets;
    }

    /// Whether any target is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Folds `facts` into the queues: every key that appeared fires, every key that went
    /// away resolves. Thresholds are per target, so each target has its own view.
    pub fn observe(&mut self, facts: &Facts) {
        let now = crate::ledger::now_rfc3339();
        for t in &self.targets {
            let active: BTreeMap<String, (Event, String)> = conditions(facts, t)
                .into_iter()
                .map(|c| (c.key, (c.event, c.summary)))
                .collect();
            let prefix = format!("{}\u{1f}", t.name);
            let before: BTreeMap<String, (Event, String)> = self
                .saved
                .active
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), v.clone())))
                .collect();
            let queue = self.saved.queues.entry(t.name.clone()).or_default();
            for (key, (event, summary)) in &active {
                if !before.contains_key(key) {
                    queue.pending.push(Transition {
                        key: key.clone(),
                        event: *event,
                        state: "firing".into(),
                        summary: summary.clone(),
                        at: now.clone(),
                    });
                }
            }
            for (key, (event, summary)) in &before {
                if !active.contains_key(key) {
                    queue.pending.push(Transition {
                        key: key.clone(),
                        event: *event,
                        state: "resolved".into(),
                        summary: summary.clone(),
                        at: now.clone(),
                    });
                }
            }
            self.saved.active.retain(|k, _| !k.starts_with(&prefix));
            for (key, v) in active {
                self.saved.active.insert(format!("{prefix}{key}"), v);
            }
        }
        self.saved.started = true;
        self.save();
    }

    /// Delivers each target's queue when its rate limit allows; failures stay queued.
    pub async fn deliver(&mut self) {
        let now = chrono::Utc::now();
        for t in &self.targets {
            let Some(queue) = self.saved.queues.get_mut(&t.name) else {
                continue;
            };
            if queue.pending.is_empty() {
                continue;
            }
            let wait = left(queue.last_sent.as_deref(), t.min_interval(), now).max(left(
                queue.last_failed.as_deref(),
                RETRY_AFTER_FAILURE,
                now,
            ));
            if !wait.is_zero() {
                continue;
            }
            let message =
                send::Message::new(&self.origin, &queue.pending, t.dashboard_url.as_deref());
            match send::send(t, &message).await {
                Ok(()) => {
                    tracing::info!(alert = %t.name, transitions = queue.pending.len(), "alert sent");
                    queue.pending.clear();
                    queue.last_sent = Some(crate::ledger::rfc3339(now));
                    queue.last_failed = None;
                }
                Err(e) => {
                    queue.last_failed = Some(crate::ledger::rfc3339(now));
                    tracing::warn!(alert = %t.name, "sending the alert failed (kept for the next try): {e}");
                }
            }
        }
        self.save();
    }

    /// How long until a held-back queue may be delivered (its target's `min_interval`
    /// since its last message), when one is waiting.
    pub fn next_due(&self) -> Option<Duration> {
        let now = chrono::Utc::now();
        self.targets
            .iter()
            .filter_map(|t| {
                let q = self.saved.queues.get(&t.name)?;
                if q.pending.is_empty() {
                    return None;
                }
                let wait = left(q.last_sent.as_deref(), t.min_interval(), now).max(left(
                    q.last_failed.as_deref(),
                    RETRY_AFTER_FAILURE,
                    now,
                ));
                // Never a busy loop, even on a clock that went backwards.
                Some(wait.max(Duration::from_millis(100)))
            })
            .min()
    }

    fn save(&self) {
        if let Err(e) = crate::ledger::state::replace_private_json(&self.path, &self.saved, false) {
            tracing::warn!("cannot save the alert state {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(extra: &str) -> AlertConfig {
        let mut t: AlertConfig = toml::from_str(&format!(
            "name = \"t\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n{extra}"
        ))
        .expect("config");
        t.validate(Path::new(".")).expect("valid");
        t
    }

    fn facts(stale: &[&str], failures: u32) -> Facts {
        Facts {
            controls: stale
                .iter()
                .map(|c| ((*c).to_owned(), "stale", "old".to_owned()))
                .collect(),
            collectors: vec![("docs".into(), failures, Some("HTTP 500".into()))],
            ..Facts::default()
        }
    }

    #[test]
    fn one_alert_per_transition_and_one_recovery() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = Alerts::new(vec![target("collector_failures = 2")], dir.path(), "o");
        a.observe(&facts(&["A.2.2"], 1));
        a.observe(&facts(&["A.2.2"], 1));
        let q = |a: &Alerts| {
            a.saved.queues["t"]
                .pending
                .iter()
                .map(|t| format!("{} {}", t.state, t.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(&a),
            ["firing control:A.2.2:stale"],
            "no repeat while it holds"
        );
        a.observe(&facts(&["A.2.2"], 2));
        a.observe(&facts(&[], 3));
        assert_eq!(
            q(&a),
            [
                "firing control:A.2.2:stale",
                "firing collector:docs",
                "resolved control:A.2.2:stale"
            ]
        );
        // A restart reads the same state: nothing fires again.
        let mut b = Alerts::new(vec![target("collector_failures = 2")], dir.path(), "o");
        b.observe(&facts(&[], 3));
        assert_eq!(q(&b).len(), 3);
    }

    #[test]
    fn a_checkpoint_alert_needs_an_entry_that_waited_too_long() {
        let t = target("checkpoint_max_age = \"1h\"");
        let mut f = Facts {
            uncovered: 3,
            uncovered_for: Some(Duration::from_secs(60)),
            ..Facts::default()
        };
        assert!(conditions(&f, &t).is_empty(), "a new ledger is not late");
        f.uncovered_for = Some(Duration::from_secs(7200));
        assert_eq!(conditions(&f, &t)[0].event, Event::Checkpoint);
        f.uncovered = 0;
        assert!(
            conditions(&f, &t).is_empty(),
            "an old checkpoint over an unchanged ledger is fine"
        );
    }

    #[test]
    fn targets_filter_events_and_the_config_is_checked() {
        let t = target("on = [\"collector\"]");
        assert!(
            conditions(&facts(&["A.2.2"], 5), &t)
                .iter()
                .all(|c| c.event == Event::Collector)
        );
        let bad: AlertConfig = toml::from_str("name = \"x\"\nkind = \"slack\"").expect("parses");
        assert!(
            bad.clone()
                .validate(Path::new("."))
                .unwrap_err()
                .contains("url_env")
        );
        let mail: AlertConfig =
            toml::from_str("name = \"m\"\nkind = \"email\"\nsmtp = \"h:587\"").expect("parses");
        assert!(
            mail.clone()
                .validate(Path::new("."))
                .unwrap_err()
                .contains("from")
        );
    }
}
