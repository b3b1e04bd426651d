//! Observations: what a collector found, before it is hashed and recorded.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

/// Cheap change detection for files: what `stat` says (git's index keeps the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// Status-change time, nanoseconds since the Unix epoch: moves on every write, even one
    /// that restores the size and modification time.
    pub ctime_ns: i64,
    /// Device the inode lives on.
    pub dev: u64,
}

impl Fingerprint {
    /// The fingerprint `stat` gives a file.
    pub fn of(meta: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt as _;
        Fingerprint {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            inode: meta.ino(),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            dev: meta.dev(),
        }
    }
}

/// What the ledger holds about an artefact that is still present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The fingerprint recorded with the last version, if the source has one.
    pub fingerprint: Option<Fingerprint>,
    /// SHA-256 of the last recorded version.
    pub sha256: [u8; 32],
    /// The source's change marker recorded with it (see [`Observation::version`]).
    pub version: Option<String>,
    /// The controls of its last entry, comma-separated, when known.
    pub controls: Option<String>,
}

/// The content of an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The bytes themselves (a JSON record from an API, a small document).
    Bytes(Vec<u8>),
    /// A local file, read and hashed by the recorder in a streaming pass.
    File(PathBuf),
    /// Metadata only: the content is kept elsewhere, and its submitter states its digest
    /// and size (evidence pushed through the API without its bytes).
    Digest {
        /// SHA-256 of the content.
        sha256: [u8; 32],
        /// Size in bytes.
        size: u64,
    },
    /// Content already placed in Evident's blob store by its caller (a file pushed through
    /// the API, hashed as it arrived).
    Stored {
        /// SHA-256 of the content.
        sha256: [u8; 32],
        /// Size in bytes.
        size: u64,
        /// Whether the caller's write added the blob (it was not there before).
        fresh: bool,
    },
    /// The artefact is gone; its last recorded digest.
    Gone {
        /// SHA-256 of the last recorded version.
        last_sha256: [u8; 32],
    },
}

/// One artefact found by a collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Stable URI of the artefact (`file://policies/ai-policy.md`).
    pub uri: String,
    /// Artefact kind (`document`, `document_removed`, `model_version`, …).
    pub kind: String,
    /// Human title.
    pub title: Option<String>,
    /// Path relative to the source root, where the source has paths (for mapping rules).
    pub path: Option<String>,
    /// When the source says it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When the source says it was last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// The date the artefact takes effect, when it states one.
    pub effective_date: Option<NaiveDate>,
    /// Media type.
    pub media_type: Option<String>,
    /// Labels or tags from the source.
    pub labels: Vec<String>,
    /// Control ids the source itself names (tags, labels, front matter).
    pub control_hints: Vec<String>,
    /// The content.
    pub content: Content,
    /// Stat fingerprint, for sources that are files.
    pub fingerprint: Option<Fingerprint>,
    /// A cheap change marker from the source (a record's update stamp, an ETag). Stored with
    /// the artefact and handed back in [`Known::version`], so the next run can skip the
    /// requests that build the full content when the marker has not moved.
    pub version: Option<String>,
    /// What the default mapping reads to suggest controls (a CI run's name, a document's
    /// words). Collectors never name control ids themselves: the suggestions live in
    /// Evident's mapping, beside the catalogue. Unlike [`Observation::control_hints`], a
    /// `[[rules]]` table with `replace = true` drops them.
    pub suggest: Suggest,
}

/// What an artefact is, for the default mapping: the facts a collector knows about it, not
/// the controls they suggest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Suggest {
    /// Nothing to go on.
    #[default]
    Nothing,
    /// A document, by the words of its path, title or labels.
    Document(String),
    /// A ticket, by the words of its type, labels, components and subject.
    Ticket(String),
    /// A CI run, by the name of its pipeline, workflow, builder or jobs.
    CiRun(String),
    /// A registered model version.
    ModelVersion {
        /// It has evaluation metrics, or a tag says it was validated.
        evaluated: bool,
        /// It is in production, or holds a serving alias.
        deployed: bool,
        /// It has a description, or a tag points at a model card.
        documented: bool,
    },
    /// A model or dataset repository on a hub.
    HubRepo {
        /// A dataset rather than a model.
        dataset: bool,
    },
    /// A model card.
    ModelCard,
    /// A dataset card, by its repository's tags.
    DatasetCard(Vec<String>),
}

impl Observation {
    /// The observation that `uri`, last recorded as `known`, is gone from its source.
    pub fn removed(uri: impl Into<String>, kind: impl Into<String>, known: &Known) -> Self {
        Observation::new(
            uri,
            kind,
            Content::Gone {
                last_sha256: known.sha256,
            },
        )
    }

    /// A new observation with the given URI, kind and content and nothing else set.
    pub fn new(uri: impl Into<String>, kind: impl Into<String>, content: Content) -> Self {
        Observation {
            uri: uri.into(),
            kind: kind.into(),
            title: None,
            path: None,
            created_at: None,
            updated_at: None,
            effective_date: None,
            media_type: None,
            labels: Vec::new(),
            control_hints: Vec::new(),
            content,
            fingerprint: None,
            version: None,
            suggest: Suggest::Nothing,
        }
    }
}
