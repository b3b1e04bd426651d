//! Bundle members: what each path is, which paths are safe, and reading them out of a
//! directory without extracting anything (a `.tar.gz` is read by `archive.rs`). Unsafe members (escaping paths,
//! links, devices) are refused here, before anything reads their content.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::{CHECKPOINT, COSIGNATURES, INDEX, SUMS, SUMS_SIG, TSA_CA, TSA_CERTS, TSR, VKEY};
use crate::ledger::leaf::parse_hex32;
use crate::ledger::merkle::Hash;
use crate::ledger::note::canonical_u64;

/// What reading a bundle hands its members to.
pub(super) trait MemberSink {
    /// One regular file with a safe path; `Err` only when the archive cannot be read further.
    fn member(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()>;
    /// A member refused unread, or the archive ending early: what and why.
    fn refuse(&mut self, why: String);
}

/// What a member is, by its path.
pub(super) enum Member {
    Checkpoint,
    Vkey,
    Sums,
    Earlier(u64),
    Consistency(u64, u64),
    Entry(u64),
    Meta(u64),
    Proof(u64),
    Blob(Hash),
    Index,
    Tsr,
    Cosignatures,
    TsaCa,
    SumsSig,
    Document,
    Population(Hash),
    PopulationLeaves(Hash),
    Sample(Hash),
}

/// The digest a manifest member is named by: `<64 lowercase hex><suffix>`.
fn named(rest: &str, suffix: &str) -> Option<Hash> {
    let h = rest.strip_suffix(suffix)?;
    if h.len() != 64 || h.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    parse_hex32(h)
}

pub(super) fn classify(path: &str) -> Option<Member> {
    Some(match path {
        CHECKPOINT => Member::Checkpoint,
        VKEY => Member::Vkey,
        SUMS => Member::Sums,
        SUMS_SIG => Member::SumsSig,
        INDEX => Member::Index,
        TSR => Member::Tsr,
        COSIGNATURES => Member::Cosignatures,
        TSA_CA => Member::TsaCa,
        "README.txt"
        | "coverage.csv"
        | "soa.csv"
        | "report/index.html"
        | "oscal/assessment-results.json"
        | TSA_CERTS => Member::Document,
        p => {
            if let Some(m) = p.strip_prefix("checkpoints/") {
                Member::Earlier(canonical_u64(m)?)
            } else if let Some(r) = p.strip_prefix("consistency/") {
                let (a, b) = r.split_once('-')?;
                Member::Consistency(canonical_u64(a)?, canonical_u64(b)?)
            } else if let Some(i) = p
                .strip_prefix("entries/")
                .and_then(|r| r.strip_suffix(".json"))
            {
                Member::Entry(canonical_u64(i)?)
            } else if let Some(i) = p
                .strip_prefix("meta/")
                .and_then(|r| r.strip_suffix(".json"))
            {
                Member::Meta(canonical_u64(i)?)
            } else if let Some(i) = p
                .strip_prefix("proofs/")
                .and_then(|r| r.strip_suffix(".tlog-proof"))
            {
                Member::Proof(canonical_u64(i)?)
            } else if let Some(h) = p.strip_prefix("blobs/sha256/") {
                Member::Blob(named(h, "")?)
            } else if let Some(r) = p.strip_prefix("populations/") {
                match named(r, ".json") {
                    Some(h) => Member::Population(h),
                    None => Member::PopulationLeaves(named(r, ".leaves")?),
                }
            } else if let Some(r) = p.strip_prefix("samples/") {
                Member::Sample(named(r, ".json")?)
            } else {
                return None;
            }
        }
    })
}

/// Checks a member path: relative, no `..`, no empty or `.` components, plain UTF-8.
pub(super) fn safe_path(raw: &[u8]) -> Result<String, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "its path is not UTF-8".to_owned())?;
    let s = s.strip_prefix("./").unwrap_or(s);
    if s.starts_with('/') {
        return Err(format!("{s:?} is an absolute path"));
    }
    if s.contains('\\') || s.contains('\0') {
        return Err(format!("{s:?} contains a backslash or NUL"));
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    if trimmed.split('/').any(|c| c == "..") {
        return Err(format!("{s:?} escapes the bundle with '..'"));
    }
    if trimmed.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(format!("{s:?} has an empty or '.' component"));
    }
    Ok(s.to_owned())
}

/// Reads every file below `root`, refusing links and special files, checkpoint and key
/// first so proofs are checked as they are read.
pub(super) fn read_dir(root: &Path, st: &mut dyn MemberSink) -> io::Result<()> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel))? {
            let e = e?;
            let name = rel.join(e.file_name());
            let shown = name.to_string_lossy().into_owned();
            let ft = std::fs::symlink_metadata(e.path())?.file_type();
            if ft.is_symlink() {
                st.refuse(format!(
                    "refused member {shown}: it is a symbolic link; bundles hold regular files only"
                ));
            } else if ft.is_dir() {
                stack.push(name);
            } else if ft.is_file() {
                files.push(shown);
            } else {
                st.refuse(format!(
                    "refused member {shown}: it is a device file, FIFO or socket"
                ));
            }
        }
    }
    files.sort_by_key(|p| {
        (
            !matches!(p.as_str(), CHECKPOINT | VKEY),
            !p.starts_with("entries/"),
            p.clone(),
        )
    });
    for rel in files {
        let path = match safe_path(rel.as_bytes()) {
            Ok(p) => p,
            Err(why) => {
                st.refuse(format!("refused member: {why}"));
                continue;
            }
        };
        // Not following a link swapped in since the listing: an auditor's copy is not trusted.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(root.join(&rel))?;
        if !f.metadata()?.is_file() {
            st.refuse(format!("refused member {path}: it is not a regular file"));
            continue;
        }
        let size = f.metadata()?.len();
        st.member(&path, size, &mut f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_refused() {
        assert!(safe_path(b"../etc/passwd").is_err());
        assert!(safe_path(b"/etc/passwd").is_err());
        assert!(safe_path(b"entries/../../x").is_err());
        assert!(safe_path(b"entries//1.json").is_err());
        assert!(safe_path(b"a\\b").is_err());
        assert_eq!(safe_path(b"./entries/1.json").unwrap(), "entries/1.json");
    }

    #[test]
    fn members_are_classified_strictly() {
        assert!(matches!(
            classify("entries/12.json"),
            Some(Member::Entry(12))
        ));
        assert!(classify("entries/012.json").is_none());
        assert!(classify("entries/x.json").is_none());
        assert!(classify("blobs/sha256/ABC").is_none());
        assert!(matches!(
            classify("consistency/3-5"),
            Some(Member::Consistency(3, 5))
        ));
        assert!(classify("evil.sh").is_none());
    }
}
