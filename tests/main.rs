//! Integration tests against the real `evident` binary (one test binary for the workspace).

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod agents;
mod alerts;
mod api;
mod bad_input;
mod blobs;
mod bundle;
mod cli;
mod collectors;
mod common;
mod daemon;
mod dashboard;
mod documents;
mod erasure;
mod forges;
mod layers;
mod lineage;
mod peers;
mod sampling;
mod secrets;
mod tamper;
mod tickets;
mod tiles;
mod timestamps;
mod witnesses;
