//! `evident verify --tiles`: a published log checked from its tiles alone. The checkpoint's
//! signature against the key the auditor holds; every entry bundle parsed and every leaf
//! read as an evidence statement; every hash tile against the hashes recomputed from the
//! leaves; the root against the checkpoint; and, with an earlier checkpoint, that the tree
//! of that size is the one it names. Work is streamed a tile at a time: memory does not
//! grow with the log.

use serde::Serialize;

use crate::findings::{Checks, Findings};
use crate::ledger::leaf::LeafView;
use crate::ledger::merkle::{Frontier, Hash, leaf_hash};
use crate::ledger::note::{Checkpoint, NoteVerifier, check_quorum, encode_hash};
use crate::verify::CheckpointRef;

use super::TileError;
use super::layout::{Tile, WIDTH, split_entries, tile_root};
use super::publish::CHECKPOINT;
use super::store::Store;

/// The checks of a tile verification, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TileCheck {
    /// The checkpoint's signature by the log's key.
    Checkpoint,
    /// Entry bundles read, each leaf an evidence statement.
    Entries,
    /// Hash tiles against the recomputed tree.
    Tiles,
    /// The recomputed root against the checkpoint.
    Tree,
    /// The tree extends the auditor's earlier checkpoint.
    Previous,
    /// The checkpoint is cosigned by the witness quorum.
    Witnesses,
}

impl Checks for TileCheck {
    const ALL: &'static [TileCheck] = &[
        TileCheck::Checkpoint,
        TileCheck::Entries,
        TileCheck::Tiles,
        TileCheck::Tree,
        TileCheck::Previous,
        TileCheck::Witnesses,
    ];

    fn label(self) -> &'static str {
        match self {
            TileCheck::Checkpoint => "checkpoint",
            TileCheck::Entries => "entries",
            TileCheck::Tiles => "tiles",
            TileCheck::Tree => "tree",
            TileCheck::Previous => "previous",
            TileCheck::Witnesses => "witnesses",
        }
    }
}

/// What to check the tiles against.
#[derive(Debug, Clone)]
pub struct TileOptions {
    /// The log's verifier key, as the auditor received it.
    pub key: NoteVerifier,
    /// A signed checkpoint the auditor kept; the published tree must extend it.
    pub previous: Option<String>,
    /// Witnesses whose cosignatures count (cosigner keys), and how many must cosign.
    pub witnesses: (Vec<NoteVerifier>, usize),
}

/// The outcome of a tile verification.
#[derive(Debug, Default, Serialize)]
pub struct TileReport {
    /// Where the tiles were read.
    pub store: String,
    /// Entries read and checked.
    pub entries: u64,
    /// Hash tiles compared.
    pub tiles: u64,
    /// Everything found wrong.
    #[serde(flatten)]
    pub findings: Findings<TileCheck>,
    /// The published checkpoint, when its signature verified.
    pub checkpoint: Option<CheckpointRef>,
    /// The size of the earlier checkpoint the tree was shown to extend.
    pub previous: Option<u64>,
    /// The witnesses whose cosignature of the checkpoint verified.
    pub cosigned_by: Vec<String>,
}

impl TileReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.ok()
    }
}

/// Hashes of one tree level waiting to fill a tile, and how many tiles it has completed.
#[derive(Default)]
struct Level {
    pending: Vec<Hash>,
    done: u64,
}

struct Walk<'a> {
    store: &'a Store,
    report: TileReport,
    levels: Vec<Level>,
    frontier: Frontier,
    previous: Option<Checkpoint>,
}

/// Checks the log published at `store`.
pub fn verify_tiles(
    store: &Store,
    opts: &TileOptions,
    progress: bool,
) -> Result<TileReport, TileError> {
    let mut report = TileReport {
        store: store.describe(),
        ..TileReport::default()
    };
    let Some(cp) = open_checkpoint(store, opts, &mut report)? else {
        return Ok(report);
    };
    let previous = match opts
        .previous
        .as_deref()
        .map(|p| Checkpoint::open(p, &opts.key))
    {
        None => None,
        Some(Ok(p)) if p.size > cp.size => {
            report.findings.add(
                TileCheck::Previous,
                None,
                format!(
                    "your checkpoint has size {} but the published one only {}: the log was \
                     rolled back",
                    p.size, cp.size
                ),
            );
            None
        }
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            report.findings.add(
                TileCheck::Previous,
                None,
                format!("your previous checkpoint does not verify with this key: {e}"),
            );
            None
        }
    };
    let mut walk = Walk {
        store,
        report,
        levels: Vec::new(),
        frontier: Frontier::default(),
        previous,
    };
    if walk.previous.as_ref().is_some_and(|p| p.size == 0) {
        walk.at_previous();
    }
    let bar = crate::progress::bar(
        cp.size,
        "{spinner} checking tiles [{bar:30}] {pos}/{len} entries",
        progress && cp.size > 10_000,
    );
    let bundles = cp.size.div_ceil(WIDTH);
    for n in 0..bundles {
        let width = (cp.size - n * WIDTH).min(WIDTH);
        let tile = Tile {
            level: 0,
            index: n,
            width,
            entries: false,
        };
        if !walk.bundle(&tile)? {
            walk.report.findings.add(
                TileCheck::Tree,
                None,
                format!(
                    "not recomputed: the entries from {} on could not be read",
                    tile.first_leaf()
                ),
            );
            bar.finish_and_clear();
            return Ok(walk.report);
        }
        bar.set_position(walk.frontier.size());
    }
    bar.finish_and_clear();
    walk.finish()?;
    if walk.frontier.root() != cp.root {
        walk.report.findings.add(
            TileCheck::Tree,
            None,
            format!(
                "the leaves' root is {} but the checkpoint says {}",
                encode_hash(&walk.frontier.root()),
                encode_hash(&cp.root)
            ),
        );
    }
    Ok(walk.report)
}

fn open_checkpoint(
    store: &Store,
    opts: &TileOptions,
    report: &mut TileReport,
) -> Result<Option<Checkpoint>, TileError> {
    let Some(bytes) = store.get(CHECKPOINT)? else {
        report.findings.add(
            TileCheck::Checkpoint,
            None,
            format!(
                "{} has no checkpoint: is it the log's tile prefix?",
                store.describe()
            ),
        );
        return Ok(None);
    };
    let opened = String::from_utf8(bytes)
        .map_err(|_| "it is not UTF-8 text".to_owned())
        .and_then(|t| {
            let cp = Checkpoint::open(&t, &opts.key).map_err(|e| e.to_string())?;
            Ok((cp, t))
        });
    match opened {
        Ok((cp, note)) => {
            let (witnesses, quorum) = &opts.witnesses;
            if !witnesses.is_empty() {
                match check_quorum(&note, witnesses, *quorum) {
                    Ok(names) => report.cosigned_by = names,
                    Err(e) => report.findings.add(TileCheck::Witnesses, None, e),
                }
            }
            report.checkpoint = Some(CheckpointRef {
                size: cp.size,
                root: encode_hash(&cp.root),
            });
            Ok(Some(cp))
        }
        Err(e) => {
            report.findings.add(
                TileCheck::Checkpoint,
                None,
                format!("the published checkpoint does not verify: {e}"),
            );
            Ok(None)
        }
    }
}

impl Walk<'_> {
    /// Reads one entry bundle and its level-0 tile; false when the entries are unusable
    /// (the tree cannot be recomputed past them).
    fn bundle(&mut self, tile: &Tile) -> Result<bool, TileError> {
        let path = tile.bundle().path();
        let bytes = match self.store.get(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(self.entries_failed(tile, format!("{path} is missing"))),
            Err(e) => return Ok(self.entries_failed(tile, e.to_string())),
        };
        let leaves = match split_entries(&bytes, tile.width) {
            Ok(l) => l,
            Err(e) => return Ok(self.entries_failed(tile, format!("{path}: {e}"))),
        };
        if leaves.len() as u64 != tile.width {
            let what = format!(
                "{path} holds {} entries, the checkpoint needs {}",
                leaves.len(),
                tile.width
            );
            return Ok(self.entries_failed(tile, what));
        }
        let mut hashes = Vec::with_capacity(leaves.len());
        for (i, leaf) in leaves.iter().enumerate() {
            let index = tile.first_leaf() + i as u64;
            if let Err(e) = LeafView::parse(leaf) {
                self.report.findings.add(
                    TileCheck::Entries,
                    Some(index),
                    format!("not an evidence statement: {e}"),
                );
            }
            let h = leaf_hash(leaf);
            hashes.push(h);
            self.frontier.append(h);
            self.report.entries += 1;
            if self
                .previous
                .as_ref()
                .is_some_and(|p| p.size == self.frontier.size())
            {
                self.at_previous();
            }
        }
        self.compare(tile, &hashes)?;
        if tile.width == WIDTH {
            self.carry(1, tile_root(&hashes))?;
        }
        Ok(true)
    }

    fn entries_failed(&mut self, tile: &Tile, what: String) -> bool {
        self.report
            .findings
            .add(TileCheck::Entries, Some(tile.first_leaf()), what);
        false
    }

    /// The tree has reached the earlier checkpoint's size: its root must be that one's.
    fn at_previous(&mut self) {
        let Some(p) = self.previous.take() else {
            return;
        };
        if self.frontier.root() == p.root {
            self.report.previous = Some(p.size);
        } else {
            self.report.findings.add(
                TileCheck::Previous,
                None,
                format!(
                    "the published tree of size {} is not the one your checkpoint names: \
                     the log shows you a different history",
                    p.size
                ),
            );
        }
    }

    /// Adds a full tile's root to the level above, checking that level's tile when it fills.
    fn carry(&mut self, level: u8, h: Hash) -> Result<(), TileError> {
        let at = usize::from(level);
        if self.levels.len() <= at {
            self.levels.resize_with(at + 1, Level::default);
        }
        self.levels[at].pending.push(h);
        if self.levels[at].pending.len() as u64 == WIDTH {
            let hashes = std::mem::take(&mut self.levels[at].pending);
            let tile = Tile {
                level,
                index: self.levels[at].done,
                width: WIDTH,
                entries: false,
            };
            self.levels[at].done += 1;
            self.compare(&tile, &hashes)?;
            self.carry(level + 1, tile_root(&hashes))?;
        }
        Ok(())
    }

    /// The partial tiles of the right edge, once every leaf is in.
    fn finish(&mut self) -> Result<(), TileError> {
        for at in 1..self.levels.len() {
            let pending = std::mem::take(&mut self.levels[at].pending);
            if pending.is_empty() {
                continue;
            }
            let tile = Tile {
                level: at as u8,
                index: self.levels[at].done,
                width: pending.len() as u64,
                entries: false,
            };
            self.compare(&tile, &pending)?;
        }
        Ok(())
    }

    /// A published hash tile against the hashes recomputed for it.
    fn compare(&mut self, tile: &Tile, hashes: &[Hash]) -> Result<(), TileError> {
        let path = tile.path();
        self.report.tiles += 1;
        let index = (tile.level == 0).then(|| tile.first_leaf());
        match self.store.get(&path) {
            Ok(Some(b)) if b == hashes.concat() => {}
            Ok(Some(b)) => self.report.findings.add(
                TileCheck::Tiles,
                index,
                format!(
                    "{path} ({} bytes) differs from the tree its entries make",
                    b.len()
                ),
            ),
            Ok(None) => {
                self.report
                    .findings
                    .add(TileCheck::Tiles, index, format!("{path} is missing"))
            }
            Err(e) => self
                .report
                .findings
                .add(TileCheck::Tiles, index, e.to_string()),
        }
        Ok(())
    }
}
