//! The TOML configuration: ledger location, collectors, mapping rules.
//!
//! Unknown keys are rejected everywhere; every error names the file, line and column and
//! says how to fix it. Relative paths resolve against the config file's directory, so a
//! config and its evidence folders can move together.

pub mod agent;
pub mod alerts;
pub mod api;
pub mod lineage;
pub mod retention;
pub mod witness;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use evident_collectors::SourceConfig;
use evident_collectors::http::TokenSource;
use evident_collectors::sources::Common;
use evident_collectors::sources::GlobPattern;
pub use evident_collectors::units::Interval;
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::schedule::Schedule;

/// Where the config is read from when nothing else is said.
pub const DEFAULT_CONFIG: &str = "/etc/evident/evident.toml";

/// A config that cannot be used, with its location.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{}:{l}:{c}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// A control or clause id checked against the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlId(pub &'static str);

impl<'de> Deserialize<'de> for ControlId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Catalog::get()
            .resolve(&s)
            .map(ControlId)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// A byte size such as `100MiB`, `5 MB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `<number>[ ]<unit>` with units B, KB/MB/GB/TB (powers of 1000) and
    /// KiB/MiB/GiB/TiB (powers of 1024).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid size {s:?}: write a whole number and a unit, e.g. \"100MiB\"")
        })?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "invalid size unit {other:?} in {s:?}: use B, KB, MB, GB, KiB, MiB or GiB"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// How often the daemon signs a checkpoint when the tree grew, unless configured.
pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// `[ledger]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// State directory: `evident.db`, `blobs/`, the signing key.
    pub path: PathBuf,
    /// Checkpoint origin (the log's name): no spaces or `+`.
    pub origin: String,
    /// How often `evident run` signs a checkpoint when the tree grew (default 10m).
    #[serde(default)]
    pub checkpoint_interval: Option<Interval>,
    /// How often a collector whose runs change nothing still appends a `collector_run`
    /// entry proving it ran (default 1d).
    #[serde(default)]
    pub heartbeat: Option<Interval>,
    /// How often the daemon verifies the whole ledger itself (off unless set; alerts on a
    /// failure).
    #[serde(default)]
    pub self_verify: Option<Interval>,
    /// How many `[[witnesses]]` must cosign a checkpoint before it is published (default:
    /// all of them).
    #[serde(default)]
    pub witness_quorum: Option<usize>,
    /// `2`: new entries get v2 leaves, whose title, URI and submitter can be erased
    /// (docs/erasure.md). A per-ledger choice: once made, the ledger keeps it.
    #[serde(default)]
    pub leaf_version: Option<u8>,
}

/// The heartbeat, unless configured.
pub const DEFAULT_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(86_400);

impl LedgerConfig {
    /// The heartbeat, or its default.
    pub fn heartbeat(&self) -> std::time::Duration {
        self.heartbeat.map_or(DEFAULT_HEARTBEAT, |i| i.0)
    }

    /// The checkpoint interval, or its default.
    pub fn checkpoint_interval(&self) -> std::time::Duration {
        self.checkpoint_interval
            .map_or(DEFAULT_CHECKPOINT_INTERVAL, |i| i.0)
    }
}

/// One `[[collectors]]` table: common settings plus the source's own.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectorConfig {
    /// Instance name, used in URIs and commands.
    pub name: String,
    /// Controls for everything this collector finds.
    #[serde(default)]
    pub controls: Vec<ControlId>,
    /// When the daemon runs it.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Above this size only the hash is kept, no blob.
    #[serde(default)]
    pub max_file_size: Option<ByteSize>,
    /// API collectors: environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// API collectors: file holding the token (bare names are looked up in
    /// `$CREDENTIALS_DIRECTORY` under systemd).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Per-request timeout (API collectors) or run timeout (`command`).
    #[serde(default)]
    pub timeout: Option<Interval>,
    /// API collectors: at most this many requests per second to the host.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// The daemon gives up waiting for one run after this long (default 1h): the run fails,
    /// and a run still stuck in the kernel is not started again until it ends.
    #[serde(default)]
    pub run_timeout: Option<Interval>,
    /// The source-specific part, tagged by `kind`.
    #[serde(flatten)]
    pub source: SourceConfig,
}

impl CollectorConfig {
    /// The settings every source kind shares.
    pub fn common(&self) -> Common {
        Common {
            token: TokenSource {
                token_env: self.token_env.clone(),
                token_file: self.token_file.clone(),
            },
            timeout: self.timeout.map(|t| t.0),
            rate_limit: self.rate_limit,
            max_file_size: self
                .max_file_size
                .map_or(evident_collectors::sources::DEFAULT_MAX_FILE_SIZE, |s| s.0),
        }
    }
}

/// A title pattern in a rule (a regular expression, case-insensitive).
#[derive(Debug, Clone)]
pub struct TitleRegex(pub regex::Regex);

impl<'de> Deserialize<'de> for TitleRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::RegexBuilder::new(&s)
            .case_insensitive(true)
            .build()
            .map(TitleRegex)
            .map_err(|e| serde::de::Error::custom(format!("invalid title regex: {e}")))
    }
}

/// What a rule matches; every given condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// Collector name.
    pub collector: Option<String>,
    /// Artefact kind.
    pub kind: Option<String>,
    /// Glob over the path relative to the collector's root.
    pub path: Option<GlobPattern>,
    /// Glob over the artefact URI.
    pub uri: Option<GlobPattern>,
    /// Regular expression over the title.
    pub title: Option<TitleRegex>,
}

/// One `[[rules]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Conditions.
    #[serde(rename = "match")]
    pub matches: RuleMatch,
    /// Controls added when the conditions hold.
    pub controls: Vec<ControlId>,
    /// Drop the collector kind's default controls for what this rule matches (controls the
    /// source names itself, in tags or front matter, still apply).
    #[serde(default)]
    pub replace: bool,
}

/// `[controls."A.6.2.6"]`: how fresh evidence for one control must be.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPolicy {
    /// How old the newest evidence may be (default: the catalogue's).
    pub max_age: Option<Interval>,
    /// How many items must fall within `max_age` (default 1).
    pub min_items: Option<u32>,
}

/// `[applicability]`: the scope decisions of the Statement of Applicability.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    /// Annex A controls excluded, each with its justification.
    #[serde(default)]
    pub excluded: BTreeMap<ControlId, String>,
    /// Optional reasons for including controls, shown in the Statement of Applicability.
    #[serde(default)]
    pub included: BTreeMap<ControlId, String>,
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Ledger settings.
    pub ledger: LedgerConfig,
    /// Collectors.
    #[serde(default)]
    pub collectors: Vec<CollectorConfig>,
    /// Mapping rules, applied in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Freshness overrides per control or clause.
    #[serde(default)]
    pub controls: BTreeMap<ControlId, ControlPolicy>,
    /// Statement of Applicability decisions.
    #[serde(default)]
    pub applicability: Applicability,
    /// Optional RFC 3161 time anchoring of checkpoints.
    #[serde(default)]
    pub anchoring: Option<crate::anchor::AnchorConfig>,
    /// Optional publication of the log as tiles after each checkpoint.
    #[serde(default)]
    pub publish: Option<crate::tiles::PublishConfig>,
    /// Where evidence content lives: the state directory (`file://`, the default) or a
    /// bucket (`s3://bucket/prefix`).
    #[serde(default)]
    pub blobs: Option<crate::objects::StorageConfig>,
    /// Witnesses that cosign each checkpoint.
    #[serde(default)]
    pub witnesses: Vec<witness::WitnessConfig>,
    /// This daemon is a remote agent forwarding to a central server (`evident agent`).
    #[serde(default)]
    pub agent: Option<agent::AgentConfig>,
    /// The HTTP API and dashboard (`evident run`, `evident serve`).
    #[serde(default)]
    pub api: api::ApiConfig,
    /// Alert targets.
    #[serde(default)]
    pub alerts: Vec<alerts::AlertConfig>,
    /// Identifiers that link entries into lifecycle chains, beside the built-in ones.
    #[serde(default)]
    pub links: Vec<lineage::LinkRule>,
    /// Chains that must exist: each gap is a finding.
    #[serde(default)]
    pub expect: Vec<lineage::Expectation>,
    /// How long content is kept before it is erased.
    #[serde(default)]
    pub retention: retention::RetentionConfig,
    /// The file it was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A step into the config document: a table key or an array index.
/// A config text with toml's spans, to point errors at the value concerned.
struct Spans<'t> {
    text: &'t str,
    doc: Option<toml::Spanned<toml::de::DeTable<'t>>>,
}

impl Spans<'_> {
    /// Line and column of the value at `path`, when the document has it.
    fn locate(&self, path: &[At<'_>]) -> Option<(usize, usize)> {
        self.doc
            .as_ref()
            .and_then(|d| span_of(d, path))
            .map(|at| line_col(self.text, at))
    }
}

/// A config error before it is tied to its file: where, and what.
type Bad = (Option<(usize, usize)>, String);

enum At<'k> {
    Key(&'k str),
    Index(usize),
}

/// The offset of what `path` names in the parsed document (a key where a key ends the path,
/// the array element for an index); the deepest part found when the rest is missing (a key
/// the config leaves out is reported at its table). None when not even the first step is
/// there.
fn span_of(doc: &toml::Spanned<toml::de::DeTable<'_>>, path: &[At<'_>]) -> Option<usize> {
    let mut at = None;
    let top = doc.get_ref();
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for step in path {
        let next = match (step, value) {
            (At::Key(k), None) => top.get_key_value(*k).map(|(key, v)| (key.span().start, v)),
            (At::Key(k), Some(toml::de::DeValue::Table(t))) => {
                t.get_key_value(*k).map(|(key, v)| (key.span().start, v))
            }
            (At::Index(i), Some(toml::de::DeValue::Array(a))) => {
                a.get(*i).map(|v| (v.span().start, v))
            }
            _ => None,
        };
        let Some((start, v)) = next else { break };
        at = Some(start);
        value = Some(v.get_ref());
    }
    at
}

/// Names allowed for collectors: they appear in URIs.
fn valid_collector_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            position: None,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "config file not found; pass --config FILE or set EVIDENT_CONFIG \
                 (config/quickstart.toml in the repository is a working example)"
                    .to_owned()
            } else {
                format!("cannot read config: {e}")
            },
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err = |position, message: String| ConfigError {
            path: path.to_owned(),
            position,
            message,
        };
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_owned();
            let position = e.span().map(|span| {
                // Errors inside a [[collectors]] table are reported for the whole table (it
                // is parsed through `kind`); point at the offending key when one is named.
                let key = message
                    .split('`')
                    .nth(1)
                    .filter(|_| message.starts_with("unknown field"));
                let at = key
                    .and_then(|k| find_key(text, span.clone(), k))
                    .unwrap_or(span.start);
                line_col(text, at)
            });
            err(position, explain(&message))
        })?;
        cfg.file = path.to_owned();
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        // Positions from toml's own spans: a text search found the first thing that looked
        // like the value (a rule naming a collector, another table's key), not the value.
        let at = Spans {
            text,
            doc: toml::de::DeTable::parse(text).ok(),
        };
        let locate = |path: &[At<'_>]| at.locate(path);
        if cfg.ledger.origin.is_empty()
            || cfg
                .ledger
                .origin
                .contains(|c: char| c.is_whitespace() || c == '+')
        {
            return Err(err(
                locate(&[At::Key("ledger"), At::Key("origin")]),
                format!(
                    "ledger origin {:?} must be a non-empty name without spaces or '+', \
                     e.g. \"evident.example.com/aims\"",
                    cfg.ledger.origin
                ),
            ));
        }
        if let Some(v) = cfg.ledger.leaf_version.filter(|v| !matches!(v, 1 | 2)) {
            return Err(err(
                locate(&[At::Key("ledger"), At::Key("leaf_version")]),
                format!(
                    "leaf_version = {v}: Evident writes leaves of version 1 (title and URI in \
                     the leaf) or 2 (erasable, docs/erasure.md)"
                ),
            ));
        }
        cfg.ledger.path = clean_path(&base.join(&cfg.ledger.path));
        let names = cfg
            .check_collectors(&base, &at)
            .map_err(|(p, m)| err(p, m))?;
        cfg.check_rules(&names, &at).map_err(|(p, m)| err(p, m))?;
        cfg.api
            .validate(&base)
            .map_err(|(key, m)| err(locate(&[At::Key("api"), At::Key(key)]), m))?;
        let mut names = std::collections::BTreeSet::new();
        for (i, a) in cfg.alerts.iter_mut().enumerate() {
            let at = locate(&[At::Key("alerts"), At::Index(i), At::Key("name")]);
            a.validate(&base).map_err(|m| err(at, m))?;
            if !names.insert(a.name.clone()) {
                return Err(err(
                    at,
                    format!("two [[alerts]] are named {:?}; names must differ", a.name),
                ));
            }
        }
        if let Some(a) = &mut cfg.anchoring {
            a.validate()
                .map_err(|m| err(locate(&[At::Key("anchoring"), At::Key("tsa_url")]), m))?;
            if let Some(ca) = &a.ca_file {
                a.ca_file = Some(clean_path(&base.join(ca)));
            }
        }
        cfg.check_witnesses(&at).map_err(|(p, m)| err(p, m))?;
        cfg.check_lineage(&at).map_err(|(p, m)| err(p, m))?;
        cfg.retention
            .validate()
            .map_err(|m| err(locate(&[At::Key("retention")]), m))?;
        if let Some(p) = &cfg.publish {
            p.validate()
                .map_err(|m| err(locate(&[At::Key("publish"), At::Key("url")]), m))?;
        }
        if let Some(a) = &cfg.agent {
            a.endpoint().map_err(|m| {
                err(
                    locate(&[At::Key("agent"), At::Key("url")]),
                    format!("[agent] {m}"),
                )
            })?;
        }
        if let Some(b) = &cfg.blobs {
            crate::ledger::blobs::check_config(b)
                .map_err(|m| err(locate(&[At::Key("blobs"), At::Key("url")]), m))?;
        }
        cfg.check_controls(&at).map_err(|(p, m)| err(p, m))?;
        Ok(cfg)
    }

    /// Each witness's settings, their names unique, and a quorum they can meet.
    fn check_lineage(&self, at: &Spans<'_>) -> Result<(), Bad> {
        for (i, l) in self.links.iter().enumerate() {
            l.validate().and_then(|()| l.from.validate()).map_err(|m| {
                (
                    at.locate(&[At::Key("links"), At::Index(i)]),
                    format!("[[links]] {}: {m}", i + 1),
                )
            })?;
        }
        let mut names = HashSet::new();
        for (i, e) in self.expect.iter().enumerate() {
            let pos = at.locate(&[At::Key("expect"), At::Index(i)]);
            e.every
                .validate()
                .map_err(|m| format!("every: {m}"))
                .and_then(|()| {
                    e.linked_to
                        .validate()
                        .map_err(|m| format!("linked_to: {m}"))
                })
                .map_err(|m| (pos, format!("[[expect]] {:?}: {m}", e.name)))?;
            if !names.insert(e.name.as_str()) {
                return Err((
                    pos,
                    format!("two [[expect]] are named {:?}; names must differ", e.name),
                ));
            }
            if e.within == Some(0) {
                return Err((
                    pos,
                    format!(
                        "[[expect]] {:?}: within = 0 links nothing; use 1 (directly) or more",
                        e.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_witnesses(&self, at: &Spans<'_>) -> Result<(), Bad> {
        let mut names = HashSet::new();
        for (i, w) in self.witnesses.iter().enumerate() {
            let pos = at.locate(&[At::Key("witnesses"), At::Index(i)]);
            let key = w
                .validate()
                .and_then(|()| w.key())
                .map_err(|m| (pos, format!("[[witnesses]] {}: {m}", i + 1)))?;
            if !names.insert(key.name().to_owned()) {
                return Err((
                    pos,
                    format!("two [[witnesses]] have the key name {:?}", key.name()),
                ));
            }
        }
        match self.ledger.witness_quorum {
            Some(q) if q == 0 || q > self.witnesses.len() => Err((
                at.locate(&[At::Key("ledger"), At::Key("witness_quorum")]),
                format!(
                    "witness_quorum = {q}, but {} [[witnesses]] are configured: it must be \
                     between 1 and their number",
                    self.witnesses.len()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// How many witnesses must cosign a checkpoint: the quorum, or all of them.
    pub fn witness_quorum(&self) -> usize {
        self.ledger.witness_quorum.unwrap_or(self.witnesses.len())
    }

    /// Checks each collector's name (valid, unique) and settings, resolving its paths
    /// against `base`; returns the names.
    fn check_collectors(&mut self, base: &Path, at: &Spans<'_>) -> Result<HashSet<String>, Bad> {
        let mut names = HashSet::new();
        for (i, c) in self.collectors.iter_mut().enumerate() {
            let pos = at.locate(&[At::Key("collectors"), At::Index(i), At::Key("name")]);
            if !valid_collector_name(&c.name) {
                return Err((
                    pos,
                    format!(
                        "collector name {:?} may only use letters, digits, '-', '_' and '.'",
                        c.name
                    ),
                ));
            }
            if c.name == "manual" || c.name == crate::ledger::erasures::EVIDENT_SOURCE {
                return Err((
                    pos,
                    format!(
                        "collector name {:?} is reserved (`manual` for `evident add`, `evident` for Evident's own populations, samples and erasures); choose another",
                        c.name
                    ),
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err((
                    pos,
                    format!(
                        "two collectors are named {:?}; names must be unique",
                        c.name
                    ),
                ));
            }
            c.source.resolve_paths(base, clean_path);
            let mut token = TokenSource {
                token_env: c.token_env.clone(),
                token_file: c.token_file.clone(),
            };
            token.resolve(base);
            c.token_file = token.token_file;
            if let Err(message) = c.source.validate(&c.name, &c.common()) {
                return Err((pos, message));
            }
        }
        Ok(names)
    }

    /// Checks that each rule has a condition and names only configured collectors.
    fn check_rules(&self, names: &HashSet<String>, at: &Spans<'_>) -> Result<(), Bad> {
        for (i, r) in self.rules.iter().enumerate() {
            let m = &r.matches;
            if m.collector.is_none()
                && m.kind.is_none()
                && m.path.is_none()
                && m.uri.is_none()
                && m.title.is_none()
            {
                return Err((
                    None,
                    format!(
                        "rule {} has no conditions; give `match` at least one of collector, \
                     kind, path, uri, title",
                        i + 1
                    ),
                ));
            }
            if let Some(c) = &m.collector
                && !names.contains(c)
            {
                return Err((
                    at.locate(&[
                        At::Key("rules"),
                        At::Index(i),
                        At::Key("match"),
                        At::Key("collector"),
                    ]),
                    format!(
                        "rule {} names collector {c:?}, which is not configured",
                        i + 1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks control policies and the applicability statement.
    fn check_controls(&self, at: &Spans<'_>) -> Result<(), Bad> {
        for (id, policy) in &self.controls {
            if policy.min_items == Some(0) {
                return Err((
                    at.locate(&[At::Key("controls"), At::Key(id.0)]),
                    format!(
                        "[controls.\"{}\"] min_items = 0 would call a control with no evidence \
                     fresh; use 1 or more, or exclude the control in [applicability.excluded]",
                        id.0
                    ),
                ));
            }
        }
        if let Some(id) = self
            .applicability
            .included
            .keys()
            .find(|id| self.applicability.excluded.contains_key(id))
        {
            return Err((
                at.locate(&[At::Key("applicability"), At::Key("included"), At::Key(id.0)]),
                format!(
                    "{} is both included and excluded in [applicability]; keep one",
                    id.0
                ),
            ));
        }
        for (id, why) in &self.applicability.excluded {
            let pos = at.locate(&[At::Key("applicability"), At::Key("excluded"), At::Key(id.0)]);
            if !id.0.starts_with("A.") {
                return Err((
                    pos,
                    format!(
                        "clause {} cannot be excluded: clauses 4-10 are required for conformity; \
                     only Annex A controls can be excluded in [applicability.excluded]",
                        id.0
                    ),
                ));
            }
            if why.trim().is_empty() {
                return Err((
                    pos,
                    format!(
                        "excluding {} needs a justification (the Statement of Applicability \
                     shows it), e.g. \"{}\" = \"We provide no AI products to customers.\"",
                        id.0, id.0
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The collector named `name`.
    pub fn collector(&self, name: &str) -> Option<&CollectorConfig> {
        self.collectors.iter().find(|c| c.name == name)
    }
}

/// Removes `.` and `name/..` pairs lexically, so messages show the path people expect.
pub fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Finds the line where `key = ` appears in the table that starts at `span`.
fn find_key(text: &str, span: std::ops::Range<usize>, key: &str) -> Option<usize> {
    let region = text.get(span.start..)?;
    let mut offset = 0;
    for (i, line) in region.split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            break; // the next table
        }
        if t.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
        {
            return Some(span.start + offset + (line.len() - t.len()));
        }
        offset += line.len();
    }
    None
}

/// Adds a hint to serde's terse messages.
fn explain(message: &str) -> String {
    if message.starts_with("unknown field") {
        format!(
            "{message}; remove it or check its spelling (see config/reference.toml for every option)"
        )
    } else if message.starts_with("missing field") {
        format!("{message}; add it (see config/reference.toml for an example)")
    } else if let Some(kind) = SourceConfig::LEFT_OUT
        .iter()
        .find(|k| message.starts_with(&format!("unknown variant `{k}`")))
    {
        format!(
            "{message}; this build of evident leaves out the `{kind}` collector (built without its Cargo feature): use a build with the default features"
        )
    } else if message.starts_with("unknown variant") {
        format!("{message}; `kind` names the collector type")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/etc/evident/test.toml"))
    }

    /// Link rules and expectations that could never work are refused where they stand.
    #[test]
    fn bad_links_and_expectations_are_named_with_their_line() {
        let base = "[ledger]\npath = \"/tmp/x\"\norigin = \"o\"\n";
        let e = parse(&format!(
            "{base}[[links]]\nkey = \"model\"\npattern = '(?P<n>\\d+)'\nvalue = \"{{name}}\"\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("[[links]] 1: value \"{name}\" names {name}"),
            "{e}"
        );
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        let e = parse(&format!("{base}[[links]]\nkey = \"a:b\"\nvalue = \"x\"\n")).unwrap_err();
        assert!(e.message.contains("without ':'"), "{e}");
        let e = parse(&format!(
            "{base}[[links]]\nkey = \"k\"\nvalue = \"x\"\npattern = '('\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("invalid pattern"), "{e}");
        let e = parse(&format!(
            "{base}[[expect]]\nname = \"x\"\nevery = {{ field = \"status\" }}\nlinked_to = {{}}\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("[[expect]] \"x\": every: field \"status\" is not a JSON pointer"),
            "{e}"
        );
        let e = parse(&format!(
            "{base}[[expect]]\nname = \"x\"\nevery = {{}}\nlinked_to = {{ field = \"/s\" }}\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("linked_to: field needs equals"), "{e}");
        let e = parse(&format!(
            "{base}[[collectors]]\nname = \"evident\"\nkind = \"filesystem\"\nroot = \"/tmp\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("is reserved"), "{e}");
        let two = "[[expect]]\nname = \"x\"\nevery = {}\nlinked_to = {}\n";
        let e = parse(&format!("{base}{two}{two}")).unwrap_err();
        assert!(e.message.contains("two [[expect]] are named \"x\""), "{e}");
        let e = parse(&format!("{base}[[expect]]\nname = \"x\"\ncontrols = [\"A.99\"]\nevery = {{}}\nlinked_to = {{}}\n")).unwrap_err();
        assert!(e.message.contains("A.99"), "{e}");
    }

    const GOOD: &str = r#"
[ledger]
path = "state"
origin = "evident.example/aims"

[[collectors]]
name = "policies"
kind = "filesystem"
root = "docs"
include = ["**/*.md", "**/*.pdf"]
exclude = ["**/.git/**"]
controls = ["A.2.2"]
max_file_size = "100MiB"
schedule = "*/15 * * * *"

[[rules]]
match = { collector = "policies", path = "impact/**" }
controls = ["A.5.3"]
"#;

    #[test]
    fn the_contract_shape_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.ledger.path, Path::new("/etc/evident/state"));
        let col = &c.collectors[0];
        assert_eq!(col.controls, vec![ControlId("A.2.2")]);
        assert_eq!(col.max_file_size, Some(ByteSize(100 << 20)));
        let SourceConfig::Filesystem(fs) = &col.source else {
            panic!("not a filesystem collector")
        };
        assert_eq!(fs.root, Path::new("/etc/evident/docs"));
        assert_eq!(c.rules[0].controls, vec![ControlId("A.5.3")]);
    }

    #[test]
    fn api_collectors_are_checked_when_the_config_loads() {
        let base = "[ledger]\npath = \"s\"\norigin = \"o\"\n\n[[collectors]]\nname = \"reg\"\n";
        let e = parse(&format!("{base}kind = \"mlflow\"\nurl = \"ftp://x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":6:") && e.contains("must be http:// or https://"),
            "{e}"
        );
        let e = parse(&format!(
            "{base}kind = \"mlflow\"\nurl = \"https://u:pw@x/\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("user name or password") && !e.contains("pw@"),
            "{e}"
        );
        let e = parse(&format!(
            "{base}kind = \"mlflow\"\nurl = \"http://x\"\nrate_limit = 0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("rate_limit must be between"), "{e}");
        let e = parse(&format!(
            "{base}kind = \"filesystem\"\nroot = \"d\"\ntoken_env = \"T\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("apply to API collectors"), "{e}");
        let e = parse(&format!(
            "{base}kind = \"github_actions\"\nrepo = \"just-a-name\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("must be \"owner/name\""), "{e}");
        let e = parse(&format!(
            "{base}kind = \"mlflow\"\nurl = \"http://x\"\nmodel = [\"a\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `model`"), "{e}");
        let ok = parse(&format!("{base}kind = \"mlflow\"\nurl = \"http://127.0.0.1:5000\"\ntoken_env = \"MLFLOW_TOKEN\"\ntimeout = \"5s\"\nrate_limit = 2.5\n")).unwrap();
        assert_eq!(ok.collectors[0].common().rate_limit, Some(2.5));
    }

    #[test]
    fn errors_point_at_the_line() {
        let e = parse(&GOOD.replace("root = \"docs\"", "root = \"docs\"\nrooot = 1")).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(10), "{e}");
        assert!(e.to_string().contains("unknown field `rooot`"), "{e}");

        let e = parse(&GOOD.replace("A.5.3", "A.5.9")).unwrap_err();
        assert!(e.to_string().contains("did you mean"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(18), "{e}");

        let e = parse(&GOOD.replace("*/15 * * * *", "every day")).unwrap_err();
        assert!(e.to_string().contains("schedule"), "{e}");

        let e = parse(&GOOD.replace("100MiB", "100 parsecs")).unwrap_err();
        assert!(e.to_string().contains("size unit"), "{e}");

        let e = parse(&GOOD.replace("[ledger]", "[ledger]\ncolour = 1")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/etc/evident/test.toml:3:1: unknown field `colour`"),
            "{e}"
        );

        let e = parse("[ledger\n").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(1), "{e}");

        // The second collector of a name is the wrong one, though the name (and a rule
        // naming it, and a value equal to it) come earlier in the text.
        let twice = GOOD.replace("root = \"docs\"", "root = \"policies\"")
            + "\n[[collectors]]\nname = \"policies\"\nkind = \"filesystem\"\nroot = \"x\"\n";
        let e = parse(&twice).unwrap_err();
        assert!(e.to_string().contains("two collectors are named"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(21), "{e}");
        // A rule's collector is found in its inline `match` table, not in the collector's
        // own `name`.
        let e =
            parse(&GOOD.replace("collector = \"policies\"", "collector = \"policy\"")).unwrap_err();
        assert!(e.to_string().contains("not configured"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(17), "{e}");
        // An anchoring error points at its URL; a key the table leaves out, at the table.
        let anchoring = GOOD.to_owned() + "\n[anchoring]\ntsa_url = \"ftp://tsa\"\n";
        let e = parse(&anchoring).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(21), "{e}");
        let doc = toml::de::DeTable::parse(&anchoring).unwrap();
        let line = |path: &[At<'_>]| span_of(&doc, path).map(|at| line_col(&anchoring, at).0);
        assert_eq!(line(&[At::Key("anchoring"), At::Key("ca_file")]), Some(20));
        assert_eq!(line(&[At::Key("nowhere"), At::Key("tsa_url")]), None);

        let e = parse(&GOOD.replace("\"filesystem\"", "\"ftp\"")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `ftp`"), "{e}");

        let e =
            parse(&GOOD.replace("collector = \"policies\"", "collector = \"nope\"")).unwrap_err();
        assert!(e.to_string().contains("not configured"), "{e}");

        let e = parse(&GOOD.replace("\"**/.git/**\"", "\"a/[b\"")).unwrap_err();
        assert!(e.to_string().contains("invalid glob"), "{e}");
    }

    #[test]
    fn intervals() {
        assert_eq!(Interval::parse("10m").unwrap().0.as_secs(), 600);
        assert_eq!(Interval::parse("250ms").unwrap().0.as_millis(), 250);
        assert!(Interval::parse("0s").is_err());
        assert!(Interval::parse("5 fortnights").is_err());
    }

    #[test]
    fn freshness_and_applicability() {
        let base = "[ledger]\npath = \"s\"\norigin = \"o\"\n";
        let cfg = parse(&format!(
            "{base}[controls.\"a.6.2.6\"]\nmax_age = \"7d\"\n\n[applicability.excluded]\n\
             \"A.10.4\" = \"No customers.\"\n"
        ))
        .unwrap();
        let p = cfg.controls[&ControlId("A.6.2.6")];
        assert_eq!(p.max_age.unwrap().0.as_secs(), 7 * 86_400);
        assert_eq!(
            cfg.applicability.excluded[&ControlId("A.10.4")],
            "No customers."
        );

        let e = parse(&format!("{base}[controls.\"A.6.2.9\"]\nmin_items = 2\n")).unwrap_err();
        assert!(e.to_string().contains("did you mean"), "{e}");
        let e = parse(&format!("{base}[controls.\"A.2.2\"]\nmin_items = 0\n")).unwrap_err();
        assert!(e.to_string().contains("min_items = 0"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        let e = parse(&format!("{base}[controls.\"A.2.2\"]\nmax_age = \"1y\"\n")).unwrap_err();
        assert!(e.to_string().contains("use ms, s, m, h or d"), "{e}");
        let e = parse(&format!(
            "{base}[applicability.excluded]\n\"9.2\" = \"x\"\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("cannot be excluded"), "{e}");
        let e = parse(&format!(
            "{base}[applicability.excluded]\n\"A.10.4\" = \" \"\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("needs a justification"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("1KB").unwrap(), ByteSize(1000));
        assert_eq!(ByteSize::parse("2 GiB").unwrap(), ByteSize(2 << 30));
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999TiB").is_err());
    }

    /// A build without a source family names what it left out (CI runs this test in the
    /// minimal build, `--no-default-features`).
    #[test]
    #[cfg(not(feature = "s3"))]
    fn left_out_kinds_say_so() {
        let base = "[ledger]\npath = \"s\"\norigin = \"o\"\n\n[[collectors]]\nname = \"b\"\n";
        let e = parse(&format!("{base}kind = \"s3\"\nbucket = \"x\"\n")).unwrap_err();
        assert!(
            e.to_string()
                .contains("this build of evident leaves out the `s3` collector"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod shipped_configs {
    use super::*;

    /// The configs shipped in `config/` stay valid.
    #[test]
    fn shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for name in ["evident.toml", "reference.toml", "quickstart.toml"] {
            Config::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The documented example shows every collector kind, and each has its page.
    #[test]
    fn example_config_and_docs_cover_every_kind() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg =
            Config::load(&root.join("config/reference.toml")).unwrap_or_else(|e| panic!("{e}"));
        for kind in SourceConfig::KINDS {
            assert!(
                cfg.collectors.iter().any(|c| c.source.kind() == *kind),
                "config/reference.toml lacks kind {kind}"
            );
            let doc = root.join(format!("docs/collectors/{kind}.md"));
            assert!(doc.exists(), "{} is missing", doc.display());
        }
    }
}
