//! The C2SP `tlog-tiles` layout: which tiles a tree of a given size has, where each lives
//! (`tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), and the entry bundle encoding
//! (each leaf prefixed by its big-endian 16-bit length).

use crate::ledger::merkle::{Hash, node_hash};

/// Tile height: a tile holds up to 2^8 hashes of one tree level.
pub const HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;
/// The largest leaf an entry bundle can carry (its length prefix is 16 bits).
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// One tile: hashes of tree level `8 × level`, or (for `entries`) the leaves themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile level (0 holds leaf hashes); ignored for entry bundles, which are level 0's.
    pub level: u8,
    /// Index of the tile within its level.
    pub index: u64,
    /// Hashes (entries) it holds: `WIDTH` when full, fewer for the partial right edge.
    pub width: u64,
    /// An entry bundle rather than a hash tile.
    pub entries: bool,
}

impl Tile {
    /// The tile's path below the log's prefix, as C2SP `tlog-tiles` spells it.
    pub fn path(&self) -> String {
        let mut n = self.index;
        let mut index = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            index = format!("x{:03}/{index}", n % 1000);
        }
        let level = if self.entries {
            "entries".to_owned()
        } else {
            self.level.to_string()
        };
        let partial = if self.width == WIDTH {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("tile/{level}/{index}{partial}")
    }

    /// The first leaf index under the tile.
    pub fn first_leaf(&self) -> u64 {
        self.index << (HEIGHT * (u32::from(self.level) + 1))
    }

    /// The entry bundle beside a level-0 hash tile.
    pub fn bundle(&self) -> Tile {
        Tile {
            entries: true,
            ..*self
        }
    }
}

/// The hash tiles a tree of `new` leaves has that a tree of `old` leaves did not have with
/// the same content: every tile that gained a hash, lowest level first, each with its width
/// at `new` (Go's `tlog.NewTiles`). A level-0 tile's entry bundle goes with it.
pub fn new_tiles(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    let mut level = 0u8;
    while u32::from(level) * HEIGHT < 64 && new >> (HEIGHT * u32::from(level)) > 0 {
        let shift = HEIGHT * u32::from(level);
        let (old_n, new_n) = (old >> shift, new >> shift);
        if old_n != new_n {
            for index in (old_n >> HEIGHT)..(new_n >> HEIGHT) {
                out.push(Tile {
                    level,
                    index,
                    width: WIDTH,
                    entries: false,
                });
            }
            let index = new_n >> HEIGHT;
            let width = new_n - (index << HEIGHT);
            if width > 0 {
                out.push(Tile {
                    level,
                    index,
                    width,
                    entries: false,
                });
            }
        }
        level += 1;
    }
    out
}

/// The tiles of every level a reader of a tree of `size` leaves needs, lowest level first.
pub fn all_tiles(size: u64) -> Vec<Tile> {
    new_tiles(0, size)
}

/// The root of the subtree a full tile's hashes make (one hash of the level above).
pub fn tile_root(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            // Carrying an odd last hash up unchanged is RFC 6962's split, bottom up.
            .map(|p| {
                if let [l, r] = p {
                    node_hash(l, r)
                } else {
                    p[0]
                }
            })
            .collect();
    }
    level.first().copied().unwrap_or_default()
}

/// Appends `leaf` to an entry bundle, or says why it cannot be carried.
pub fn push_entry(bundle: &mut Vec<u8>, leaf: &[u8]) -> Result<(), usize> {
    let len = u16::try_from(leaf.len()).map_err(|_| leaf.len())?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(leaf);
    Ok(())
}

/// Splits an entry bundle into its leaves, at most `max` of them; an error says what is
/// malformed.
pub fn split_entries(bundle: &[u8], max: u64) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        if out.len() as u64 == max {
            return Err(format!("more than the {max} entries expected"));
        }
        let [a, b, tail @ ..] = rest else {
            return Err(format!(
                "a length prefix is cut short after {} entries",
                out.len()
            ));
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if tail.len() < len {
            return Err(format!(
                "entry {} says {len} bytes but only {} remain",
                out.len(),
                tail.len()
            ));
        }
        let (leaf, next) = tail.split_at(len);
        out.push(leaf);
        rest = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(level: u8, index: u64, width: u64) -> Tile {
        Tile {
            level,
            index,
            width,
            entries: false,
        }
    }

    #[test]
    fn paths_as_the_spec_writes_them() {
        assert_eq!(t(0, 0, 256).path(), "tile/0/000");
        assert_eq!(t(1, 1234067, 1).path(), "tile/1/x001/x234/067.p/1");
        assert_eq!(
            t(0, 1234067, 256).bundle().path(),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(t(2, 1000, 7).path(), "tile/2/x001/000.p/7");
        assert_eq!(t(0, 999, 256).path(), "tile/0/999");
        assert_eq!(t(0, 3, 256).first_leaf(), 768);
        assert_eq!(t(1, 2, 1).first_leaf(), 2 * 65_536);
    }

    #[test]
    fn new_tiles_cover_growth() {
        assert_eq!(new_tiles(0, 0), vec![]);
        assert_eq!(new_tiles(0, 3), vec![t(0, 0, 3)]);
        assert_eq!(new_tiles(3, 3), vec![]);
        assert_eq!(
            new_tiles(0, 257),
            vec![t(0, 0, 256), t(0, 1, 1), t(1, 0, 1)]
        );
        assert_eq!(new_tiles(256, 257), vec![t(0, 1, 1)]);
        assert_eq!(
            new_tiles(300, 70_000),
            [
                (1..273).map(|i| t(0, i, 256)).collect::<Vec<_>>(),
                vec![t(0, 273, 112)],
                vec![t(1, 0, 256), t(1, 1, 17)],
                vec![t(2, 0, 1)],
            ]
            .concat()
        );
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_cuts() {
        let mut b = Vec::new();
        push_entry(&mut b, b"one").unwrap();
        push_entry(&mut b, b"").unwrap();
        push_entry(&mut b, &[7u8; 300]).unwrap();
        let got = split_entries(&b, 3).unwrap();
        assert_eq!(got, vec![&b"one"[..], &b""[..], &[7u8; 300][..]]);
        assert!(
            split_entries(&b, 2)
                .unwrap_err()
                .contains("more than the 2")
        );
        assert!(split_entries(&b[..b.len() - 1], 3).is_err());
        assert!(split_entries(&b[..6], 3).is_err());
        assert_eq!(push_entry(&mut b, &vec![0; 70_000]), Err(70_000));
    }
}
