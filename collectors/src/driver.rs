//! The collector driver: one loop policy for every source system.
//!
//! A [`Source`] only builds requests and turns answers into observations. The [`Run`] it is
//! handed owns what every source shares, so each behaves the same when something goes wrong:
//!
//! - an artefact known with the same change marker is counted, not fetched ([`Run::unchanged`]);
//! - an error on one item becomes a problem on that item and the run goes on, except a
//!   rate limit (the source said when to come back), which ends the run ([`Run::item`]);
//! - an error returned from [`Source::scan`] ends the run, but what was found before it is
//!   kept and recorded; the run is reported failed with that error;
//! - a cursor is saved only after a run without failure ([`Run::set_cursor`]), so an item
//!   that failed is looked at again next time;
//! - removals are swept in URI order, and only after a complete listing
//!   ([`Run::sweep_removed`]).
//!
//! [`Driven`] implements [`Collector`] for every `Source`; `sources::SourceConfig` lists each
//! kind once.

use crate::http::Http;
use crate::sources::Common;
use crate::sources::download::Scratch;
use crate::{
    Batch, CollectContext, CollectError, Collector, Cursor, ItemProblem, Known, Observation,
};

/// A source system: how it is built from its config, and one scan. Its kind is written
/// once, in the list in `sources/mod.rs`.
#[async_trait::async_trait]
pub trait Source: Send + Sync + std::fmt::Debug + Sized + 'static {
    /// The kind's own settings from the `[[collectors]]` table.
    type Config;
    /// Builds the source named `name`; refuses a config that could never work.
    fn new(name: &str, cfg: &Self::Config, common: &Common) -> Result<Self, CollectError>;
    /// Looks at the source once, reporting what it finds to `run`. An error ends the run;
    /// what was pushed before it is still recorded.
    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError>;
    /// Checks that the source is reachable and the credentials work.
    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        Ok(())
    }
    /// The HTTP client, whose request count the run reports (API sources).
    fn http(&self) -> Option<&Http> {
        None
    }
}

/// One collection run, as a source sees it.
#[derive(Debug)]
pub struct Run<'a> {
    name: &'a str,
    kind: &'static str,
    cx: &'a CollectContext,
    cursor: Option<&'a str>,
    batch: Batch,
    next: Option<NextCursor>,
    scratch: Option<Scratch>,
}

/// A cursor a source asked to save, and the rule for keeping it.
#[derive(Debug)]
enum NextCursor {
    /// Kept only when no item failed: the cursor would skip past a failed item.
    AfterClean(String),
    /// Kept even when items failed: the source already holds it below every failed item.
    Watermark(String),
}

impl<'a> Run<'a> {
    /// A run of collector `name` of kind `kind`, resuming at `cursor` (ignored on full runs).
    pub fn new(
        name: &'a str,
        kind: &'static str,
        cx: &'a CollectContext,
        cursor: Option<&'a Cursor>,
    ) -> Run<'a> {
        Run {
            name,
            kind,
            cx,
            cursor: cursor.filter(|_| !cx.full).map(|c| c.0.as_str()),
            batch: Batch::default(),
            next: None,
            scratch: None,
        }
    }

    /// The collector's name from the config.
    pub fn name(&self) -> &str {
        self.name
    }

    /// What the ledger knows and how this run was asked for.
    pub fn context(&self) -> &'a CollectContext {
        self.cx
    }

    /// Whether this run ignores cursors and caches.
    pub fn full(&self) -> bool {
        self.cx.full
    }

    /// Where the last clean run ended; `None` on a first or full run.
    pub fn cursor(&self) -> Option<&'a str> {
        self.cursor
    }

    /// The cursor as JSON of type `T`; the default when there is none or it does not parse
    /// (a cursor from an older version is no reason to fail: the run starts over).
    pub fn cursor_json<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        self.cursor
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }

    /// Where the next run resumes. Saved only if the run ends without failure and no item
    /// failed, so nothing is skipped for good.
    pub fn set_cursor(&mut self, cursor: impl Into<String>) {
        self.next = Some(NextCursor::AfterClean(cursor.into()));
    }

    /// Where the next run resumes, already held below every item that failed: saved unless
    /// the run itself fails.
    pub fn set_watermark(&mut self, cursor: impl Into<String>) {
        self.next = Some(NextCursor::Watermark(cursor.into()));
    }

    /// What the ledger holds for `uri`, if it is still present.
    pub fn known(&self, uri: &str) -> Option<&'a Known> {
        self.cx.known.get(uri)
    }

    /// Whether `uri` is known with change marker `version` (and this is not a full run);
    /// counts it as unchanged if so.
    pub fn unchanged(&mut self, uri: &str, version: &str) -> bool {
        let same = !self.cx.full
            && self
                .known(uri)
                .and_then(|k| k.version.as_deref())
                .is_some_and(|v| v == version);
        if same {
            self.batch.unchanged += 1;
        }
        same
    }

    /// Counts an artefact (or a listing page) seen unchanged without asking for it.
    pub fn count_unchanged(&mut self) {
        self.batch.unchanged += 1;
    }

    /// Records an observation.
    pub fn push(&mut self, observation: Observation) {
        self.batch.observations.push(observation);
    }

    /// The outcome of work on one item (`uri`). `Ok` passes the value through. A rate limit
    /// ends the run (returned as the error, for `?`); any other error becomes a problem on
    /// the item and `Ok(None)` tells the source to go on with the next.
    pub fn item<T>(
        &mut self,
        uri: &str,
        outcome: Result<T, CollectError>,
    ) -> Result<Option<T>, CollectError> {
        match outcome {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.retry_after().is_some() => Err(e),
            Err(e) => {
                self.problem(uri, e.to_string());
                Ok(None)
            }
        }
    }

    /// An item that could not be collected: it counts as failed, and the cursor stays.
    pub fn problem(&mut self, item: impl Into<String>, message: impl Into<String>) {
        self.batch.problems.push(ItemProblem {
            item: item.into(),
            message: message.into(),
            failed: true,
        });
    }

    /// An item deliberately left out (a link leaving the root, a file too large to keep):
    /// reported, but not a failure.
    pub fn skipped(&mut self, item: impl Into<String>, message: impl Into<String>) {
        self.batch.problems.push(ItemProblem {
            item: item.into(),
            message: message.into(),
            failed: false,
        });
    }

    /// After a complete listing: every known artefact under `prefix` that `present` does not
    /// claim is recorded as removed, with kind `kind`, in URI order (so the ledger's order
    /// does not depend on a hash map's). Returns those removals, for the source to name.
    pub fn sweep_removed(
        &mut self,
        prefix: &str,
        kind: &str,
        present: impl Fn(&str) -> bool,
    ) -> &mut [Observation] {
        let mut gone: Vec<(&String, &Known)> = self
            .cx
            .known
            .iter()
            .filter(|(uri, _)| uri.starts_with(prefix) && !present(uri))
            .collect();
        gone.sort_by_key(|(uri, _)| *uri);
        let from = self.batch.observations.len();
        for (uri, k) in gone {
            self.batch
                .observations
                .push(Observation::removed(uri.clone(), kind, k));
        }
        &mut self.batch.observations[from..]
    }

    /// The run's private scratch directory for downloads (made on first use, removed once
    /// the batch is recorded).
    pub fn scratch(&mut self) -> Result<&mut Scratch, CollectError> {
        if self.scratch.is_none() {
            self.scratch = Some(Scratch::new(self.kind)?);
        }
        // Just filled when it was empty.
        self.scratch
            .as_mut()
            .ok_or_else(|| CollectError::Task("scratch directory vanished".into()))
    }

    /// Takes in what a walk on another thread found (its observations, unchanged count and
    /// problems).
    pub fn absorb(&mut self, found: Batch) {
        self.batch.observations.extend(found.observations);
        self.batch.unchanged += found.unchanged;
        self.batch.problems.extend(found.problems);
    }

    /// What this run found, as a batch of its own (for a walk run on another thread).
    pub fn into_batch(self) -> Batch {
        self.finish(None, 0)
    }

    /// The batch to record: `failure` ends it early (what was found is kept), and the cursor
    /// is kept only as its rule allows.
    fn finish(mut self, failure: Option<CollectError>, requests: u64) -> Batch {
        let item_failed = self.batch.problems.iter().any(|p| p.failed);
        self.batch.cursor = match self.next {
            _ if failure.is_some() => None,
            Some(NextCursor::AfterClean(_)) if item_failed => None,
            Some(NextCursor::AfterClean(c) | NextCursor::Watermark(c)) => Some(Cursor(c)),
            None => None,
        };
        self.batch.failure = failure;
        self.batch.requests = requests;
        self.batch.scratch = self.scratch.map(Scratch::into_dir);
        self.batch
    }
}

/// A running [`Source`] under its config name: the one `Collector` implementation.
#[derive(Debug)]
pub struct Driven<S> {
    name: String,
    kind: &'static str,
    source: S,
}

impl<S: Source> Driven<S> {
    /// Builds source `S` of kind `kind`, named `name`, from its config.
    pub fn build(
        name: &str,
        kind: &'static str,
        cfg: &S::Config,
        common: &Common,
    ) -> Result<Box<dyn Collector>, CollectError> {
        Ok(Box::new(Driven {
            name: name.to_owned(),
            kind,
            source: S::new(name, cfg, common)?,
        }))
    }
}

#[async_trait::async_trait]
impl<S: Source> Collector for Driven<S> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        let mut run = Run::new(&self.name, self.kind, cx, cursor);
        let failure = self.source.scan(&mut run).await.err();
        let requests = self.source.http().map_or(0, Http::requests);
        Ok(run.finish(failure, requests))
    }

    async fn check(&self, cx: &CollectContext) -> Result<(), CollectError> {
        self.source.check(cx).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::Content;

    /// What the test source does, step by step.
    #[derive(Debug, Clone)]
    enum Step {
        Push(&'static str),
        Item(&'static str, Option<CollectError>),
        Skip(&'static str),
        Cursor(&'static str),
        Watermark(&'static str),
        Sweep(&'static str),
        Fail(CollectError),
    }

    #[derive(Debug)]
    struct Scripted(Vec<Step>);

    impl Clone for CollectError {
        fn clone(&self) -> Self {
            match self {
                CollectError::Remote {
                    message,
                    retryable,
                    retry_after,
                } => CollectError::Remote {
                    message: message.clone(),
                    retryable: *retryable,
                    retry_after: *retry_after,
                },
                other => CollectError::Task(other.to_string()),
            }
        }
    }

    #[async_trait::async_trait]
    impl Source for Scripted {
        type Config = Vec<Step>;

        fn new(_: &str, cfg: &Vec<Step>, _: &Common) -> Result<Self, CollectError> {
            Ok(Scripted(cfg.clone()))
        }

        async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
            for step in &self.0 {
                match step {
                    Step::Push(uri) => {
                        if !run.unchanged(uri, "v1") {
                            run.push(Observation::new(*uri, "doc", Content::Bytes(vec![1])));
                        }
                    }
                    Step::Item(uri, e) => {
                        let outcome = e.clone().map_or(Ok(()), Err);
                        if run.item(uri, outcome)?.is_some() {
                            run.push(Observation::new(*uri, "doc", Content::Bytes(vec![2])));
                        }
                    }
                    Step::Skip(uri) => run.skipped(*uri, "too large"),
                    Step::Cursor(c) => run.set_cursor(*c),
                    Step::Watermark(c) => run.set_watermark(*c),
                    Step::Sweep(prefix) => {
                        run.sweep_removed(prefix, "doc_removed", |u| u.ends_with("/kept"));
                    }
                    Step::Fail(e) => return Err(e.clone()),
                }
            }
            Ok(())
        }
    }

    fn known(uris: &[&str]) -> CollectContext {
        let k = uris
            .iter()
            .map(|u| {
                let known = Known {
                    fingerprint: None,
                    sha256: [7; 32],
                    version: Some("v1".into()),
                    controls: None,
                };
                ((*u).to_owned(), known)
            })
            .collect::<HashMap<_, _>>();
        CollectContext {
            known: Arc::new(k),
            ..CollectContext::default()
        }
    }

    async fn collect(steps: Vec<Step>, cx: &CollectContext, cursor: Option<&str>) -> Batch {
        let c = Driven::<Scripted>::build("t", "scripted", &steps, &Common::default()).unwrap();
        assert_eq!((c.kind(), c.name()), ("scripted", "t"));
        let cursor = cursor.map(|c| Cursor(c.into()));
        c.collect(cx, cursor.as_ref()).await.unwrap()
    }

    fn remote(retry_after: Option<Duration>) -> CollectError {
        CollectError::Remote {
            message: "HTTP 500".into(),
            retryable: true,
            retry_after,
        }
    }

    fn uris(b: &Batch) -> Vec<&str> {
        b.observations.iter().map(|o| o.uri.as_str()).collect()
    }

    #[tokio::test]
    async fn a_failure_keeps_what_was_found_and_drops_the_cursor() {
        let cx = CollectContext::default();
        let b = collect(
            vec![
                Step::Push("a"),
                Step::Cursor("c1"),
                Step::Push("b"),
                Step::Fail(remote(None)),
                Step::Push("never"),
            ],
            &cx,
            None,
        )
        .await;
        assert_eq!(uris(&b), ["a", "b"]);
        assert!(b.failure.is_some());
        assert_eq!(b.cursor, None);
    }

    #[tokio::test]
    async fn an_item_error_is_a_problem_but_a_rate_limit_ends_the_run() {
        let cx = CollectContext::default();
        let b = collect(
            vec![
                Step::Item("a", None),
                Step::Item("b", Some(remote(None))),
                Step::Item("c", None),
                Step::Cursor("c1"),
            ],
            &cx,
            None,
        )
        .await;
        assert_eq!(uris(&b), ["a", "c"]);
        assert_eq!(b.problems.len(), 1);
        assert!(b.problems[0].failed && b.problems[0].item == "b");
        assert!(b.failure.is_none());
        // An item failed: the cursor would skip past it for good.
        assert_eq!(b.cursor, None);

        let b = collect(
            vec![
                Step::Item("a", None),
                Step::Item("b", Some(remote(Some(Duration::from_secs(60))))),
                Step::Item("c", None),
            ],
            &cx,
            None,
        )
        .await;
        assert_eq!(uris(&b), ["a"]);
        assert!(b.problems.is_empty());
        assert_eq!(
            b.failure.and_then(|e| e.retry_after()),
            Some(Duration::from_secs(60))
        );
    }

    #[tokio::test]
    async fn cursors_are_kept_by_their_rule() {
        let cx = CollectContext::default();
        let clean = collect(vec![Step::Skip("big"), Step::Cursor("c1")], &cx, None).await;
        assert_eq!(
            clean.cursor,
            Some(Cursor("c1".into())),
            "a skip is no failure"
        );
        let mark = vec![Step::Item("x", Some(remote(None))), Step::Watermark("w1")];
        let b = collect(mark.clone(), &cx, None).await;
        assert_eq!(
            b.cursor,
            Some(Cursor("w1".into())),
            "a watermark survives items"
        );
        let mut failing = mark;
        failing.push(Step::Fail(remote(None)));
        assert_eq!(collect(failing, &cx, None).await.cursor, None);
    }

    #[tokio::test]
    async fn unchanged_and_full_runs() {
        let cx = known(&["a"]);
        let b = collect(vec![Step::Push("a"), Step::Push("b")], &cx, None).await;
        assert_eq!((uris(&b), b.unchanged), (vec!["b"], 1));
        let full = CollectContext {
            full: true,
            ..cx.clone()
        };
        let b = collect(vec![Step::Push("a")], &full, None).await;
        assert_eq!((uris(&b), b.unchanged), (vec!["a"], 0));
        // A full run does not see the stored cursor.
        let mut run = Run::new("t", "scripted", &full, None);
        assert_eq!(run.cursor(), None);
        let stored = Cursor("c0".into());
        run = Run::new("t", "scripted", &cx, Some(&stored));
        assert_eq!(run.cursor(), Some("c0"));
        let full_run = Run::new("t", "scripted", &full, Some(&stored));
        assert_eq!(full_run.cursor(), None);
    }

    #[tokio::test]
    async fn removals_are_swept_in_uri_order_under_the_prefix() {
        let cx = known(&[
            "s://z/2",
            "s://z/10",
            "s://z/kept",
            "s://other/1",
            "s://z/1",
        ]);
        let b = collect(vec![Step::Sweep("s://z/")], &cx, None).await;
        assert_eq!(uris(&b), ["s://z/1", "s://z/10", "s://z/2"]);
        assert!(b.observations.iter().all(|o| o.kind == "doc_removed"
            && o.content
                == Content::Gone {
                    last_sha256: [7; 32]
                }));
    }
}
