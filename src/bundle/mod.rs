//! The audit bundle: what `evident export` writes and `evident verify BUNDLE` checks offline.
//!
//! Layout (a `.tar.gz` or a directory, the same members either way):
//!
//! ```text
//! README.txt                    how to check the bundle by hand and with evident
//! log.vkey                      the verifier key (compared with the one the auditor holds)
//! checkpoint                    signed checkpoint of size N
//! checkpoint.tsr                RFC 3161 timestamp over `checkpoint`, when anchoring is on
//! tsa/certs.pem  tsa/ca.pem     the token's certificates; the TSA's CA as configured
//! checkpoints/<m>               every earlier checkpoint of the ledger
//! consistency/<m>-<N>           proof that tree m is a prefix of tree N, one base64 hash a line
//! entries/<idx>.json            leaf bytes, verbatim
//! proofs/<idx>.tlog-proof       inclusion proof of that leaf against `checkpoint`
//! blobs/sha256/<hex>            artefact content, named by its digest
//! index.csv                     one row per entry: what it is and where its content is (or why not)
//! coverage.csv  soa.csv         readiness per control; Statement of Applicability
//! report/index.html             the human report
//! oscal/assessment-results.json NIST OSCAL 1.1 Assessment Results
//! populations/<id>.json         a population manifest (`evident population`), named by its SHA-256
//! populations/<id>.leaves       every leaf of the log up to that population's checkpoint, one a line
//! samples/<id>.json             a sample manifest (`evident sample`), named by its SHA-256
//! SHA256SUMS                    `sha256sum -c SHA256SUMS` checks every other member
//! SHA256SUMS.sig                signed note (the log's key) over the SHA-256 of SHA256SUMS
//! ```
//!
//! Entries, proofs and blobs are proven by the signed tree; the documents derived from them
//! (index, coverage, SoA, report, OSCAL) are authenticated by `SHA256SUMS.sig`, and the
//! index is also recomputed from the leaves by `verify`.
//!
//! Two exports of the same ledger state and scope are byte-identical: members are written in
//! one fixed order with fixed tar metadata, UUIDs are v5 of stable inputs, and every date in
//! the bundle comes from the ledger (the checkpoint's signing time), none from the clock.

mod archive;
pub mod export;
mod members;
mod oscal;
mod readme;
mod report;
pub mod sampling;
mod sink;
pub mod verify;

/// The members that hold a list of checksums.
pub const SUMS: &str = "SHA256SUMS";
/// A signed note over the SHA-256 of `SHA256SUMS`, by the log's key.
pub const SUMS_SIG: &str = "SHA256SUMS.sig";

/// The first line of the note in `SHA256SUMS.sig`; the second is the hex SHA-256.
pub const SUMS_NOTE_HEAD: &str = "evident audit bundle SHA256SUMS";
/// The signed checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// The verifier key.
pub const VKEY: &str = "log.vkey";
/// The RFC 3161 timestamp response over `checkpoint`.
pub const TSR: &str = "checkpoint.tsr";
/// The witnesses' cosignature lines of the checkpoint (`c2sp.org/tlog-cosignature`), kept
/// apart so `checkpoint` stays the bytes the RFC 3161 token signs.
pub const COSIGNATURES: &str = "checkpoint.cosignatures";
/// The certificates the timestamp token carries.
pub const TSA_CERTS: &str = "tsa/certs.pem";
/// The TSA's CA certificates, as configured.
pub const TSA_CA: &str = "tsa/ca.pem";
/// The entry index.
pub const INDEX: &str = "index.csv";

/// The header line of `index.csv`.
pub const INDEX_HEADER: &str = "index,kind,source,uri,title,collected_at,effective_date,\
source_updated_at,controls,sha256,content";

/// The first ten fields of an `index.csv` row, everything but `content`, as one CSV
/// prefix: the export writes it from the entry and `verify` recomputes it from the leaf.
/// `shown` is the URI and title the leaf shows (`ledger::meta::shown`: a v2 leaf's come
/// from its metadata record, `meta/<index>.json`).
pub fn index_prefix(
    index: u64,
    leaf: &crate::ledger::leaf::LeafView<'_>,
    shown: (&str, Option<&str>),
) -> String {
    use crate::ledger::leaf::LeafStr;
    let p = &leaf.predicate;
    let text = LeafStr::or_empty;
    let controls: Vec<&str> = p.controls.iter().map(LeafStr::as_str).collect();
    crate::csv::line(
        [
            index.to_string().as_str(),
            p.kind.as_str(),
            p.source.as_str(),
            shown.0,
            shown.1.unwrap_or(""),
            p.collected_at.as_str(),
            text(&p.effective_date),
            text(&p.source_updated_at),
            &controls.join(" "),
            leaf.subject_sha256.as_str(),
        ]
        .into_iter(),
    )
}

/// Largest entry, timestamp or CA member `verify` reads into memory.
pub const MAX_SMALL_MEMBER: u64 = 1 << 20;
/// Largest checkpoint, signed note, key or inclusion proof (a real one is under 4 KiB).
pub const MAX_NOTE_MEMBER: u64 = 64 << 10;
/// Largest consistency proof (at most 2·64 hashes of 45 bytes).
pub const MAX_CONSISTENCY_MEMBER: u64 = 16 << 10;
/// Longest `SHA256SUMS` line.
pub const MAX_SUMS_LINE: usize = 4096;
/// Longest `index.csv` record.
pub const MAX_INDEX_RECORD: u64 = 256 << 10;
/// Largest report, CSV or OSCAL member `verify` accepts.
pub const MAX_DOCUMENT_MEMBER: u64 = 1 << 30;

/// `entries/<idx>.json`.
pub fn entry_path(index: u64) -> String {
    format!("entries/{index}.json")
}

/// `meta/<idx>.json`: a v2 entry's metadata record.
pub fn meta_path(index: u64) -> String {
    format!("meta/{index}.json")
}

/// `proofs/<idx>.tlog-proof`.
pub fn proof_path(index: u64) -> String {
    format!("proofs/{index}.tlog-proof")
}

/// `blobs/sha256/<hex>`.
pub fn blob_path(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}

/// `populations/<id>.json`.
pub fn population_path(id: &str) -> String {
    format!("populations/{id}.json")
}

/// `populations/<id>.leaves`.
pub fn population_leaves_path(id: &str) -> String {
    format!("populations/{id}.leaves")
}

/// `samples/<id>.json`.
pub fn sample_path(id: &str) -> String {
    format!("samples/{id}.json")
}

/// `consistency/<m>-<n>`.
pub fn consistency_path(old: u64, new: u64) -> String {
    format!("consistency/{old}-{new}")
}

/// Whether an export goes to a `.tar.gz` file (else a directory).
pub fn is_tarball(path: &std::path::Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
    name.is_some_and(|n| n.ends_with(".tar.gz") || n.ends_with(".tgz"))
}
