//! Publishing the ledger as tiles: after a checkpoint, every tile that changed since the
//! published one (new full tiles and the partial right edge), then the checkpoint itself,
//! last and after a sync, so a reader never finds a checkpoint whose tiles are missing.

use crate::ledger::merkle::{Hash, HashReader as _, stored_hash_index, tree_hash};
use crate::ledger::note::{Checkpoint, NoteVerifier};
use crate::ledger::reader::Reader;

use super::TileError;
use super::layout::{HEIGHT, Tile, WIDTH, new_tiles, push_entry};
use super::store::Store;

/// What one publication did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// The tree size now published.
    pub size: u64,
    /// The size the store held before (0 for a first publication).
    pub from: u64,
    /// Hash tiles and entry bundles written.
    pub objects: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// The checkpoint object's name.
pub const CHECKPOINT: &str = "checkpoint";

/// Publishes the ledger's latest checkpoint and what it covers to `store`. `note` is the
/// checkpoint as it is to be served (with any witness cosignatures); `None` publishes the
/// ledger's latest as signed.
pub fn publish(
    reader: &Reader,
    store: &Store,
    verifier: &NoteVerifier,
    note: Option<(u64, String)>,
) -> Result<Option<Published>, TileError> {
    let Some((size, note)) = note.map_or_else(|| reader.latest_checkpoint(), |n| Ok(Some(n)))?
    else {
        return Ok(None);
    };
    let current = store.get(CHECKPOINT)?;
    let from = published_size(reader, store, verifier, size, current.as_deref())?;
    if from == size && current.as_deref() == Some(note.as_bytes()) {
        return Ok(Some(Published {
            size,
            from,
            objects: 0,
            bytes: 0,
        }));
    }
    let mut done = Published {
        size,
        from,
        objects: 0,
        bytes: 0,
    };
    for tile in new_tiles(from, size) {
        let hashes = tile_hashes(reader, &tile)?;
        put(store, &tile, &hashes.concat(), &mut done)?;
        if tile.level == 0 {
            put(
                store,
                &tile.bundle(),
                &entry_bundle(reader, &tile)?,
                &mut done,
            )?;
        }
    }
    store.sync()?;
    store.put(CHECKPOINT, note.as_bytes())?;
    Ok(Some(done))
}

fn put(store: &Store, tile: &Tile, data: &[u8], done: &mut Published) -> Result<(), TileError> {
    store.put(&tile.path(), data)?;
    done.objects += 1;
    done.bytes += data.len() as u64;
    Ok(())
}

/// The size the store's checkpoint covers, once it is known to be this log's and a prefix
/// of this ledger; 0 when the store is empty.
fn published_size(
    reader: &Reader,
    store: &Store,
    verifier: &NoteVerifier,
    size: u64,
    current: Option<&[u8]>,
) -> Result<u64, TileError> {
    let Some(bytes) = current else {
        return Ok(0);
    };
    let conflict = |why: String| TileError::Published {
        store: store.describe(),
        why,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| conflict("its checkpoint is not text".into()))?;
    let cp = Checkpoint::open(text, verifier).map_err(|e| {
        conflict(format!(
            "its checkpoint is not this log's ({e}); publish each log to its own place"
        ))
    })?;
    if cp.size > size {
        return Err(conflict(format!(
            "it holds a checkpoint of size {} but the ledger's latest is {size}: the ledger \
             is behind what was published (restored from an older backup?): restore a \
             backup that holds that checkpoint, or publish this ledger to a new place",
            cp.size
        )));
    }
    let ours = tree_hash(reader, cp.size).map_err(crate::ledger::LedgerError::from)?;
    if ours != cp.root {
        return Err(conflict(format!(
            "its tree of size {} differs from this ledger's: two histories under one key",
            cp.size
        )));
    }
    Ok(cp.size)
}

/// A hash tile's content, read from the ledger's stored hashes.
fn tile_hashes(reader: &Reader, tile: &Tile) -> Result<Vec<Hash>, TileError> {
    let level = HEIGHT * u32::from(tile.level);
    let first = tile.index * WIDTH;
    let sidx = |i: u64| stored_hash_index(level, i);
    if tile.level > 0 {
        return Ok((first..first + tile.width)
            .map(|i| reader.read_hash(sidx(i)))
            .collect::<Result<_, _>>()
            .map_err(crate::ledger::LedgerError::from)?);
    }
    // Level 0: one range read covers the tile's leaves and the nodes stored between them.
    let (lo, hi) = (sidx(first), sidx(first + tile.width - 1));
    let rows = reader.tree_hashes_from(lo, hi - lo + 1)?;
    let mut want = (first..first + tile.width).map(sidx).peekable();
    let mut out = Vec::with_capacity(tile.width as usize);
    for (s, h) in rows {
        if want.peek() == Some(&s) {
            out.push(h);
            want.next();
        }
    }
    match want.next() {
        None => Ok(out),
        Some(s) => Err(crate::ledger::LedgerError::from(
            crate::ledger::merkle::MerkleError::Missing(s),
        )
        .into()),
    }
}

/// The entry bundle beside a level-0 tile.
fn entry_bundle(reader: &Reader, tile: &Tile) -> Result<Vec<u8>, TileError> {
    let first = tile.first_leaf();
    let mut out = Vec::new();
    let mut next = first;
    let mut too_large = None;
    reader.for_each_leaf_in(first, first + tile.width, |idx, leaf| {
        if idx != next {
            return Err(crate::ledger::LedgerError::Corrupt(format!(
                "entry {next} is missing"
            )));
        }
        next += 1;
        if let Err(len) = push_entry(&mut out, leaf) {
            too_large.get_or_insert(TileError::EntryTooLarge { index: idx, len });
        }
        Ok(())
    })?;
    if let Some(e) = too_large {
        return Err(e);
    }
    if next != first + tile.width {
        return Err(crate::ledger::LedgerError::Corrupt(format!("entry {next} is missing")).into());
    }
    Ok(out)
}
