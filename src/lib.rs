//! Evident: a tamper-evident evidence ledger for ISO/IEC 42001 AI management systems.

pub mod ledger;
pub mod catalog;
pub mod config;
pub mod schedule;
pub mod mapping;
pub mod recorder;
pub mod verify;
pub mod cli;
