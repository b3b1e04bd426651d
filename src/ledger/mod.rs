//! The tamper-evident evidence ledger: Merkle tree, signed checkpoints, leaves, SQLite storage.

pub mod leaf;
pub mod merkle;
pub mod note;

#[cfg(test)]
mod vectors;
