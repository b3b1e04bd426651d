//! Tampering with a ledger makes `verify` exit 3 and name the problem.

use crate::common::{Env, fails_with};

fn verify_fails(env: &Env, needle: &str) -> String {
    let v = env.run(&["verify"]);
    let out = v.stdout.clone();
    fails_with(v, needle);
    out
}

#[test]
fn untouched_ledger_verifies() {
    let env = Env::ready();
    let v = env.run(&["verify"]).ok();
    assert!(
        v.stdout.contains("OK: ledger verifies up to checkpoint"),
        "{}",
        v.stdout
    );
    let json = env.run(&["verify", "--format", "json"]).ok().json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
    assert!(json["entries"].as_u64().unwrap() >= 6);
}

#[test]
fn one_flipped_byte_in_a_leaf() {
    let env = Env::ready();
    let db = env.tamper_db();
    let mut leaf: Vec<u8> = db
        .query_row("SELECT leaf FROM entries WHERE idx = 2", [], |r| r.get(0))
        .unwrap();
    let pos = leaf.windows(6).position(|w| w == b"source").unwrap() + 10;
    leaf[pos] ^= 0x01;
    db.execute("UPDATE entries SET leaf = ?1 WHERE idx = 2", [leaf])
        .unwrap();
    let out = verify_fails(
        &env,
        "FAIL entry 2: leaf bytes do not match the stored tree",
    );
    assert!(out.contains("checkpoint of size"), "{out}");
}

#[test]
fn a_derived_column_rewritten() {
    let env = Env::ready();
    let db = env.tamper_db();
    db.execute(
        "UPDATE entries SET controls = 'A.2.2,A.9.2' WHERE idx = 1",
        [],
    )
    .unwrap();
    verify_fails(&env, "FAIL entry 1: column controls says");
}

/// A date column rewritten together with the evidence row it feeds (so the evidence index
/// still matches the columns): the column is held to the leaf.
#[test]
fn a_source_time_rewritten_with_its_evidence_row() {
    let env = Env::ready();
    let db = env.tamper_db();
    let (idx, old): (i64, String) = db
        .query_row(
            "SELECT idx, source_updated_at FROM entries WHERE source_updated_at IS NOT NULL \
             AND effective_date IS NULL AND controls <> '' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    db.execute_batch(&format!(
        "UPDATE entries SET source_updated_at = '2099-01-01T00:00:00Z' WHERE idx = {idx};
         UPDATE evidence SET date = '2099-01-01T00:00:00Z' WHERE idx = {idx} AND date = '{old}';"
    ))
    .unwrap();
    verify_fails(
        &env,
        &format!("FAIL entry {idx}: column source_updated_at says"),
    );
}

#[test]
fn an_entry_deleted() {
    let env = Env::ready();
    let db = env.tamper_db();
    db.execute("DELETE FROM entries WHERE idx = 2", []).unwrap();
    verify_fails(&env, "entries 2..2 are missing");
}

#[test]
fn the_log_truncated() {
    let env = Env::ready();
    let db = env.tamper_db();
    let n: i64 = db
        .query_row("SELECT MAX(idx) FROM entries", [], |r| r.get(0))
        .unwrap();
    db.execute("DELETE FROM entries WHERE idx >= ?1", [n - 1])
        .unwrap();
    verify_fails(&env, "but the ledger holds");
}

#[test]
fn two_entries_swapped() {
    let env = Env::ready();
    let db = env.tamper_db();
    db.execute_batch(
        "UPDATE entries SET idx = -1 WHERE idx = 1;
         UPDATE entries SET idx = 1 WHERE idx = 3;
         UPDATE entries SET idx = 3 WHERE idx = -1;",
    )
    .unwrap();
    let out = verify_fails(&env, "FAIL entry 1: leaf bytes do not match");
    assert!(
        out.contains("FAIL entry 3: leaf bytes do not match"),
        "{out}"
    );
}

#[test]
fn a_blob_altered() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::ready();
    let q = env
        .run(&["query", "A.6.2.7", "--format", "json"])
        .ok()
        .json();
    let sha = q[0]["sha256"].as_str().unwrap().to_owned();
    let idx = q[0]["index"].as_u64().unwrap();
    let blob = env.state().join("blobs/sha256").join(&sha[..2]).join(&sha);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    verify_fails(
        &env,
        &format!("FAIL entry {idx}: blob {sha} has been altered"),
    );
    std::fs::remove_file(&blob).unwrap();
    verify_fails(&env, "is missing from the blob store");
}

#[test]
fn a_checkpoint_signature_replaced() {
    let env = Env::ready();
    let db = env.tamper_db();
    let (size, note): (i64, String) = db
        .query_row("SELECT size, note FROM checkpoints", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // Keep the key id, replace the signature bytes: a forged signature by "our" key.
    let (body, sig) = note.rsplit_once(' ').unwrap();
    let mut forged: Vec<char> = sig.chars().collect();
    forged[10] = if forged[10] == 'A' { 'B' } else { 'A' };
    let forged = format!("{body} {}", forged.into_iter().collect::<String>());
    db.execute(
        "UPDATE checkpoints SET note = ?1 WHERE size = ?2",
        rusqlite::params![forged, size],
    )
    .unwrap();
    verify_fails(
        &env,
        &format!("checkpoint of size {size}: no valid signature"),
    );
}

#[test]
fn a_foreign_key_is_not_trusted() {
    let env = Env::ready();
    let other = evident::ledger::note::NoteSigner::from_seed("test.evident.local/aims", &[9u8; 32])
        .unwrap();
    let v = env.run(&["verify", "--key", &other.verifier().key_string()]);
    assert_eq!(v.code, 3, "{}", v.stdout);
    assert!(v.stdout.contains("no valid signature"));
}

#[test]
fn tree_hashes_rewritten() {
    let env = Env::ready();
    let db = env.tamper_db();
    db.execute(
        "UPDATE tree_hashes SET hash = zeroblob(32) WHERE sidx = 2",
        [],
    )
    .unwrap();
    verify_fails(&env, "stored tree hash 2 differs");
}

#[test]
fn a_forged_evidence_row_is_caught_by_verify() {
    let env = Env::ready();
    let status = |env: &Env| {
        env.run(&["coverage", "--controls", "A.6.2.6", "--format", "json"])
            .ok()
            .json()["controls"][0]["status"]
            .clone()
    };
    assert_eq!(status(&env), "missing");
    // A row slipped into the index makes the control look fresh to `coverage`…
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    env.tamper_db()
        .execute(
            "INSERT INTO evidence VALUES ('A.6.2.6', ?1, 0, 'source', ?1)",
            [&yesterday],
        )
        .unwrap();
    assert_eq!(status(&env), "fresh");
    // …but `verify` recomputes the index from the signed entries and names it.
    verify_fails(
        &env,
        "the evidence index behind `coverage` differs from the entries",
    );
}

/// Deletions and edits at the start, middle and end of the ledger are named, and a row
/// forged at a negative index (below every range a pass reads by index) too.
#[test]
fn tampering_anywhere_in_the_ledger_is_named() {
    let env = Env::new();
    for i in 0..30 {
        std::fs::write(
            env.docs().join(format!("note-{i:02}.md")),
            format!("---\ncontrols: [A.6.2.6]\n---\n# Note {i}\n"),
        )
        .unwrap();
    }
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    env.run(&["checkpoint"]).ok();
    env.run(&["verify"]).ok();
    let db_path = env.state().join("evident.db");
    let total: u64 = env
        .tamper_db()
        .query_row("SELECT MAX(idx) + 1 FROM entries", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as u64;
    assert!(total > 4, "the ledger is too small: {total}");
    let saved = std::fs::read(&db_path).unwrap();
    for idx in [0, total / 2, total - 2] {
        env.tamper_db()
            .execute("DELETE FROM entries WHERE idx = ?1", [idx as i64])
            .unwrap();
        verify_fails(&env, &format!("entries {idx}..{idx} are missing"));
        std::fs::write(&db_path, &saved).unwrap();
        env.tamper_db()
            .execute(
                "UPDATE entries SET title = 'forged' WHERE idx = ?1",
                [idx as i64],
            )
            .unwrap();
        verify_fails(&env, &format!("FAIL entry {idx}: column title says"));
        std::fs::write(&db_path, &saved).unwrap();
    }
    env.tamper_db()
        .execute(
            "INSERT INTO entries SELECT -1, leaf, kind, source, uri, sha256, collected_at, title, \
             effective_date, source_updated_at, size, has_blob, controls FROM entries WHERE idx = 1",
            [],
        )
        .unwrap();
    verify_fails(&env, "a row sits at index -1: indexes start at 0");
    std::fs::write(&db_path, &saved).unwrap();
    env.run(&["verify"]).ok();
}
