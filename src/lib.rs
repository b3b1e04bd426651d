//! Evident: a tamper-evident evidence ledger for ISO/IEC 42001 AI management systems.

pub mod agent;
pub mod alerts;
pub mod anchor;
pub mod api;
pub mod bundle;
pub mod catalog;
pub mod config;
pub mod coverage;
pub mod csv;
pub mod daemon;
pub mod findings;
pub mod ledger;
pub mod lock;
pub mod mapping;
pub mod metrics;
pub mod objects;
pub mod progress;
pub mod recorder;
pub mod runner;
pub mod schedule;
pub mod soa;
pub mod status;
pub mod tiles;
pub mod verify;
pub mod when;
pub mod witness;
