//! Erasure that keeps the proofs (issue 17): a document erased, then the ledger, an
//! export, a backup and published tiles checked (everything verifies, the bytes are
//! nowhere); copies, refusals, a finish after a crash, a forged erasure claim; and
//! retention rules replayed over a synthetic year.

use std::path::Path;

use evident::ledger::leaf::hex;
use sha2::{Digest, Sha256};

use crate::common::{Env, assert_absent, verify_bundle, walk};

/// Personal data that must disappear (and a marker unlikely anywhere else).
const PERSONAL: &[u8] = b"Training record of Jane Q. Example, born 1984-02-29, employee 40417\n";

/// The index of the newest entry whose URI ends with `end`, from `query` over all controls.
fn index_of(env: &Env, end: &str) -> u64 {
    let q = env
        .run(&[
            "--format", "json", "query", "A", "4", "5", "6", "7", "8", "9", "10",
        ])
        .ok();
    let rows: serde_json::Value = serde_json::from_str(&q.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["uri"].as_str().unwrap().ends_with(end))
        .unwrap_or_else(|| panic!("no {end} in {}", q.stdout))["index"]
        .as_u64()
        .unwrap()
}

/// Deletes entry `index`'s content from the local blob store, as a disk fault would.
fn lose_blob(env: &Env, index: u64) {
    let sha = env
        .run(&["--format", "json", "show", "--meta", &index.to_string()])
        .ok()
        .json()["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::remove_file(
        env.state()
            .join(format!("blobs/sha256/{}/{sha}", &sha[..2])),
    )
    .unwrap();
}

fn bytes_under(dir: &Path) -> Vec<u8> {
    walk(dir)
        .into_iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

#[test]
fn an_erased_document_is_gone_and_every_proof_still_holds() {
    let env = Env::ready();
    let hr = env.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    std::fs::write(hr.join("jane.txt"), PERSONAL).unwrap();
    env.run(&[
        "add",
        hr.join("jane.txt").to_str().unwrap(),
        "--control",
        "A.7.4",
    ])
    .ok();
    let before_cp = env.path().join("before.cp");
    let cp = env.run(&["checkpoint"]).ok().stdout;
    std::fs::write(&before_cp, &cp).unwrap();
    let before = env.path().join("before.tar.gz");
    env.run(&["export", "--out", before.to_str().unwrap()]).ok();
    let idx = index_of(&env, "jane.txt");

    // A dry run changes nothing.
    let dry = env
        .run(&[
            "erase",
            &idx.to_string(),
            "--reason",
            "GDPR art. 17 request REQ-2026-114",
            "--dry-run",
        ])
        .ok();
    assert!(
        dry.stderr.contains("1 entry would be erased"),
        "{}",
        dry.stderr
    );
    let state_bytes: Vec<u8> = bytes_under(&env.state());
    assert!(state_bytes.windows(PERSONAL.len()).any(|w| w == PERSONAL));

    let out = env
        .run(&[
            "--format",
            "json",
            "erase",
            &idx.to_string(),
            "--reason",
            "GDPR art. 17 request REQ-2026-114",
        ])
        .ok();
    let done: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let by = done[0]["by_entry"].as_u64().unwrap();
    assert_eq!(done[0]["removed"], true);

    // The bytes are nowhere in the state directory any more (blobs, outbox, tmp, db).
    assert_absent(
        "the state directory",
        &bytes_under(&env.state()),
        &[PERSONAL.to_vec()],
    );
    // The ledger verifies and says what was erased; the erasure entry is signed.
    let v = env.run(&["--format", "json", "verify"]).ok();
    assert_eq!(v.json()["erased"], 1, "{}", v.stdout);
    let table = env.run(&["verify"]).ok();
    assert!(
        table.stdout.contains("1 erased by signed erasure entries"),
        "{}",
        table.stdout
    );
    let shown = env.run(&["show", &idx.to_string()]);
    assert_eq!(shown.code, 1);
    assert!(
        shown.stderr.contains("was erased on ")
            && shown
                .stderr
                .contains(&format!("by entry {by}: GDPR art. 17 request REQ-2026-114")),
        "{}",
        shown.stderr
    );
    let record = env.run(&["show", &by.to_string()]).ok().stdout;
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["entry"], idx.to_string());
    assert_eq!(record["sha256"], hex(&Sha256::digest(PERSONAL)));
    assert_eq!(record["what"], serde_json::json!(["content"]));
    // Coverage still counts it (it existed and was verified) and says it was erased.
    let cov = env
        .run(&["--format", "json", "coverage", "--controls", "A.7.4"])
        .ok();
    let c = &cov.json()["controls"][0];
    assert_eq!(c["newest"]["index"], idx);
    assert!(
        c["newest"]["erased"]
            .as_str()
            .unwrap()
            .contains("GDPR art. 17 request REQ-2026-114"),
        "{c}"
    );
    assert!(
        c["why"]
            .as_str()
            .unwrap()
            .contains("the newest item's content was erased on"),
        "{c}"
    );
    // The leaf is untouched: still the same inclusion proof against a later checkpoint.
    env.run(&["proof", &idx.to_string()]).ok();

    // An export made after: verifies, says why the content is absent, holds no byte of it.
    let after = env.path().join("after");
    env.run(&["export", "--out", after.to_str().unwrap()]).ok();
    verify_bundle(
        &env,
        &after,
        &["--previous-checkpoint", before_cp.to_str().unwrap()],
    )
    .ok();
    let index = std::fs::read_to_string(after.join("index.csv")).unwrap();
    assert!(
        index.contains("erased: on ")
            && index.contains(&format!(
                "by entry {by} (GDPR art. 17 request REQ-2026-114)"
            )),
        "{index}"
    );
    assert!(
        after.join(format!("entries/{by}.json")).exists(),
        "the erasure entry travels"
    );
    let report = std::fs::read_to_string(after.join("report/index.html")).unwrap();
    assert!(report.contains(&format!("by entry {by}: GDPR art. 17 request REQ-2026-114")));
    assert_absent(
        "the bundle made after",
        &bytes_under(&after),
        &[PERSONAL.to_vec()],
    );
    // The bundle made before still verifies: the erasure broke no proof.
    verify_bundle(&env, &before, &[]).ok();

    // A backup made after: verifies, without the bytes.
    let backup = env.path().join("backup");
    env.run(&["backup", backup.to_str().unwrap()]).ok();
    let vb = std::process::Command::new(crate::common::bin())
        .args(["--state-dir"])
        .arg(&backup)
        .arg("verify")
        .output()
        .unwrap();
    assert!(
        vb.status.success(),
        "{}",
        String::from_utf8_lossy(&vb.stdout)
    );
    assert_absent("the backup", &bytes_under(&backup), &[PERSONAL.to_vec()]);
    // Published tiles carry leaves only.
    let tiles = env.path().join("tiles");
    env.run(&["publish", "--to", tiles.to_str().unwrap()]).ok();
    assert_absent("the tiles", &bytes_under(&tiles), &[PERSONAL.to_vec()]);

    // Twice is refused; so are Evident's own records and entries without content.
    let again = env.run(&["erase", &idx.to_string(), "--reason", "again"]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("was already erased on"),
        "{}",
        again.stderr
    );
    let own = env.run(&["erase", &by.to_string(), "--reason", "x"]);
    assert_eq!(own.code, 2);
    assert!(
        own.stderr.contains("Evident's own erasure record"),
        "{}",
        own.stderr
    );
    let empty = env.run(&["erase", &idx.to_string(), "--reason", " "]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    let two_lines = env.run(&[
        "erase",
        "0",
        "--reason",
        "REQ-9\nerased: on 2020-01-01 by entry 1 (x)",
    ]);
    assert_eq!(two_lines.code, 2);
    assert!(
        two_lines.stderr.contains("line break"),
        "{}",
        two_lines.stderr
    );

    // A blob lost without an erasure: the ledger's verify and the bundle's both fail.
    let card = index_of(&env, "card.md");
    lose_blob(&env, card);
    let lost = env.path().join("lost");
    env.run(&["export", "--out", lost.to_str().unwrap()]).ok();
    let v = verify_bundle(&env, &lost, &[]);
    assert_eq!(v.code, 3, "{}", v.stdout);
    assert!(
        v.stdout.contains(&format!(
            "entry {card}'s content is not in the bundle: the operator's blob store lacked it"
        )),
        "{}",
        v.stdout
    );
}

#[test]
fn copies_crashes_and_forged_claims() {
    let env = Env::ready();
    let hr = env.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    for name in ["a.txt", "b.txt"] {
        std::fs::write(hr.join(name), PERSONAL).unwrap();
        env.run(&["add", hr.join(name).to_str().unwrap(), "--control", "A.7.4"])
            .ok();
    }
    let (a, b) = (index_of(&env, "a.txt"), index_of(&env, "b.txt"));
    // The same bytes back two entries: erasing one alone is refused, naming the other.
    let one = env.run(&["erase", &a.to_string(), "--reason", "REQ-7"]);
    assert_eq!(one.code, 2);
    assert!(
        one.stderr.contains(&format!("also held by entries {b} (")),
        "{}",
        one.stderr
    );
    assert!(one.stderr.contains("--with-copies"), "{}", one.stderr);
    assert!(
        bytes_under(&env.state())
            .windows(PERSONAL.len())
            .any(|w| w == PERSONAL),
        "a refusal removed nothing"
    );

    // A crash after the erasure was signed but before the bytes went: simulated by putting
    // the blob back. verify flags nothing (the bytes are there), and erase finishes it
    // without a second erasure entry.
    let blob_dir = env.state().join("blobs/sha256");
    let sha = hex(&Sha256::digest(PERSONAL));
    let blob = blob_dir.join(&sha[..2]).join(&sha);
    let kept = std::fs::read(&blob).unwrap();
    let out = env
        .run(&[
            "--format",
            "json",
            "erase",
            &a.to_string(),
            "--with-copies",
            "--reason",
            "REQ-7",
        ])
        .ok();
    let done: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(done.as_array().unwrap().len(), 2, "{done}");
    std::fs::write(&blob, &kept).unwrap();
    let finish = env
        .run(&[
            "--format",
            "json",
            "erase",
            &b.to_string(),
            "--reason",
            "REQ-7",
        ])
        .ok();
    let finished: serde_json::Value = serde_json::from_str(&finish.stdout).unwrap();
    assert_eq!(finished[0]["finish_only"], true, "{finished}");
    assert_eq!(
        finished[0]["by_entry"], done[1]["by_entry"],
        "no second erasure entry"
    );
    assert!(!blob.exists());
    env.run(&["verify"]).ok();

    // A bundle whose index claims an erasure the bundle does not carry fails, even resealed
    // by someone holding the key.
    let dir = env.path().join("bundle");
    env.run(&["export", "--out", dir.to_str().unwrap()]).ok();
    verify_bundle(&env, &dir, &[]).ok();
    let by = done[0]["by_entry"].as_u64().unwrap();
    crate::sampling::drop_entry(&dir, by);
    crate::sampling::reseal(
        &dir,
        &evident::ledger::state::StateDir::new(env.state())
            .signer()
            .unwrap(),
    );
    let bad = verify_bundle(&env, &dir, &[]);
    assert_eq!(bad.code, 3, "{}", bad.stdout);
    assert!(
        bad.stdout.contains(&format!("content is said erased by entry {by}, but the bundle carries no proven erasure entry {by} of entry {a}")),
        "{}",
        bad.stdout
    );
}

/// Retention over a synthetic year: versions superseded today become due once `keep` has
/// passed; current versions only under a `current = true` rule; a dry run changes nothing.
#[test]
fn retention_rules_over_a_synthetic_year() {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        format!(
            "{cfg}\n[[collectors]]\nname = \"hr\"\nkind = \"filesystem\"\nroot = \"hr\"\ncontrols = [\"A.7.4\"]\n\n\
             [[retention.rules]]\nsource = \"hr\"\nkeep = \"90d\"\nreason = \"HR records: 90 days after replacement (policy HR-12)\"\n\n\
             [[retention.rules]]\nsource = \"docs\"\nkind = \"document\"\nkeep = \"1y\"\ncurrent = true\nreason = \"documents: one year (policy DOC-1)\"\n"
        ),
    )
    .unwrap();
    let hr = env.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    env.run(&["init"]).ok();
    // Three versions of one record (two superseded), and one record never changed.
    for v in 1..=3 {
        std::fs::write(
            hr.join("jane.txt"),
            format!("{}version {v}\n", String::from_utf8_lossy(PERSONAL)),
        )
        .unwrap();
        std::fs::write(hr.join("john.txt"), "John's record, unchanged\n").unwrap();
        env.run(&["collect"]).ok();
    }
    let retention = |days: i64, dry: bool| -> Vec<serde_json::Value> {
        let at = (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string();
        let mut args = vec!["--format", "json", "erase", "--retention", "--at", &at];
        if dry {
            args.push("--dry-run");
        }
        let r = env.run(&args).ok();
        serde_json::from_str(&r.stdout).unwrap()
    };
    let due_at = |days: i64| -> Vec<String> {
        retention(days, true)
            .iter()
            .map(|t| {
                t["uri"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let mut months = Vec::new();
    for month in 0..=13 {
        let mut due = due_at(month * 30);
        due.sort();
        due.dedup();
        months.push((month, due));
    }
    // Before 90 days nothing; from month 3 the two superseded jane versions; from month 13
    // (past a year) also every current document of the docs collector, but never John's
    // current record or Jane's current version (the hr rule keeps current versions).
    for (m, due) in &months {
        match m {
            0..=2 => assert!(due.is_empty(), "month {m}: {due:?}"),
            3..=12 => assert_eq!(due, &["jane.txt"], "month {m}"),
            _ => {
                assert!(
                    due.contains(&"jane.txt".to_owned()) && due.contains(&"policy.md".to_owned()),
                    "month {m}: {due:?}"
                );
                assert!(!due.contains(&"john.txt".to_owned()), "month {m}: {due:?}");
            }
        }
    }
    let superseded = retention(100, true);
    assert_eq!(
        superseded.len(),
        2,
        "two superseded versions: {superseded:?}"
    );
    assert!(
        bytes_under(&env.state())
            .windows(9)
            .any(|w| w == b"version 1"),
        "the dry runs removed nothing"
    );
    // The real run at day 100 erases both, with the rule's reason; the current version stays.
    let done = retention(100, false);
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|d| d["reason"]
        == "HR records: 90 days after replacement (policy HR-12)"
        && d["by_entry"].is_u64()));
    let state = bytes_under(&env.state());
    assert!(
        !state.windows(9).any(|w| w == b"version 1")
            && !state.windows(9).any(|w| w == b"version 2")
    );
    assert!(
        state.windows(9).any(|w| w == b"version 3"),
        "the current version was kept"
    );
    env.run(&["verify"]).ok();
    // Nothing more is due at day 100 now.
    assert!(due_at(100).is_empty());
    // A rule over everything is refused.
    std::fs::write(
        env.config(),
        format!("{cfg}\n[[retention.rules]]\nkeep = \"1d\"\nreason = \"x\"\n"),
    )
    .unwrap();
    let bad = env.run(&["config", "check"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("give source, kind or controls"),
        "{}",
        bad.stderr
    );
}

/// With `[ledger] leaf_version = 2`, a document's title and URI (here naming the person)
/// are committed by a salted record beside the leaf, not written in it: erasing the entry
/// removes them with the content, from the database, an export, a backup; the leaves, the
/// tree, every proof and a bundle made before the erasure stay valid; a later version of
/// the same artefact joins its history; a record altered or dropped without an erasure is
/// caught.
#[test]
fn a_v2_entry_s_title_and_uri_are_erased_with_its_content() {
    let env = Env::ready(); // v1 leaves, from before the switch
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let v2 = cfg.replace("[ledger]\n", "[ledger]\nleaf_version = 2\n");
    assert_ne!(v2, cfg);
    std::fs::write(env.config(), &v2).unwrap();
    const NAME: &[u8] = b"jane-q-example";
    const TITLE: &str = "Appraisal of Jane Q. Example";
    let hr = env.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    let file = hr.join("appraisal-jane-q-example.txt");
    let add = |body: &[u8]| {
        std::fs::write(&file, body).unwrap();
        env.run(&[
            "add",
            file.to_str().unwrap(),
            "--control",
            "A.7.4",
            "--title",
            TITLE,
        ])
        .ok();
        index_of(&env, "appraisal-jane-q-example.txt")
    };
    let first = add(PERSONAL);
    let second = add(b"Second appraisal of the same employee\n");
    assert!(second > first);
    let cp = env.run(&["checkpoint"]).ok().stdout;
    let before_cp = env.path().join("before.cp");
    std::fs::write(&before_cp, &cp).unwrap();

    // The leaves carry neither the name nor the title; query and show still do.
    let leaf = env
        .run(&["--format", "json", "show", "--meta", &second.to_string()])
        .ok()
        .json();
    assert_eq!(
        leaf["predicateType"],
        "https://evident.dev/evidence-entry/v2"
    );
    let text = leaf.to_string();
    assert!(!text.contains("jane") && !text.contains("Jane"), "{text}");
    let tiles = env.path().join("tiles");
    env.run(&["publish", "--to", tiles.to_str().unwrap()]).ok();
    assert_absent(
        "the tiles",
        &bytes_under(&tiles),
        &[NAME.to_vec(), TITLE.as_bytes().to_vec()],
    );
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    // An export carries each record beside its leaf; the auditor's verify reads the title
    // and URI from it.
    let before = env.path().join("before");
    env.run(&["export", "--out", before.to_str().unwrap()]).ok();
    assert!(before.join(format!("meta/{second}.json")).is_file());
    let index = std::fs::read_to_string(before.join("index.csv")).unwrap();
    assert!(index.contains(TITLE), "{index}");
    verify_bundle(&env, &before, &[]).ok();

    let backup_before = env.path().join("backup-before");
    env.run(&["backup", backup_before.to_str().unwrap()]).ok();

    // Erase both versions (the second is the current one).
    let out = env
        .run(&[
            "--format",
            "json",
            "erase",
            &first.to_string(),
            &second.to_string(),
            "--reason",
            "GDPR art. 17 request REQ-2026-115",
        ])
        .ok();
    let done: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(done[0]["metadata"], true, "{done}");
    assert_eq!(done[1]["metadata"], true, "{done}");
    let by = done[1]["by_entry"].as_u64().unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&env.run(&["show", &by.to_string()]).ok().stdout).unwrap();
    assert_eq!(record["what"], serde_json::json!(["content", "metadata"]));
    // Nowhere in the state directory: database (and its log), blobs, anything.
    assert_absent(
        "the state directory",
        &bytes_under(&env.state()),
        &[PERSONAL.to_vec(), NAME.to_vec(), TITLE.as_bytes().to_vec()],
    );
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let shown = env.run(&["--format", "json", "query", "A.7.4"]).ok().stdout;
    assert!(shown.contains("evident:artefact:"), "{shown}");
    env.run(&["proof", &second.to_string()]).ok();

    // An export and a backup made after hold none of it, and verify.
    let after = env.path().join("after");
    env.run(&["export", "--out", after.to_str().unwrap()]).ok();
    verify_bundle(
        &env,
        &after,
        &["--previous-checkpoint", before_cp.to_str().unwrap()],
    )
    .ok();
    assert!(!after.join(format!("meta/{second}.json")).exists());
    assert_absent(
        "the bundle made after",
        &bytes_under(&after),
        &[PERSONAL.to_vec(), NAME.to_vec(), TITLE.as_bytes().to_vec()],
    );
    let backup = env.path().join("backup");
    env.run(&["backup", backup.to_str().unwrap()]).ok();
    assert_absent(
        "the backup",
        &bytes_under(&backup),
        &[PERSONAL.to_vec(), NAME.to_vec(), TITLE.as_bytes().to_vec()],
    );
    // The bundle made before still verifies: no proof was broken.
    verify_bundle(&env, &before, &[]).ok();

    // The store put back from the backup made before (its content, not its database):
    // `erase --replay` removes again what the log records as erased, recording nothing.
    let old_blob = walk(&backup_before)
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| b == PERSONAL))
        .expect("the backup made before holds the content");
    let rel = old_blob.strip_prefix(&backup_before).unwrap();
    std::fs::copy(&old_blob, env.state().join(rel)).unwrap();
    let count = || -> i64 {
        rusqlite::Connection::open(env.state().join("evident.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
            .unwrap()
    };
    let size_before = count();
    let replayed = env
        .run(&["--format", "json", "erase", "--replay"])
        .ok()
        .json();
    assert_eq!(replayed.as_array().map(Vec::len), Some(1), "{replayed}");
    assert_eq!(replayed[0]["index"], first, "{replayed}");
    assert_eq!(replayed[0]["removed"], true, "{replayed}");
    assert!(!env.state().join(rel).exists());
    assert_eq!(count(), size_before, "a replay records nothing new");
    let again = env.run(&["erase", "--replay"]).ok();
    assert!(
        again.stdout.contains("nothing to erase"),
        "{}",
        again.stdout
    );

    // The same file recorded again joins the erased versions' artefact: the history of
    // superseded versions verify recomputes still matches the stored one.
    let third = add(b"Third appraisal\n");
    assert!(third > by);
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    // Tampering: a record altered, then one dropped without an erasure.
    let db = env.tamper_db();
    db.execute_batch("DROP TRIGGER IF EXISTS entry_meta_no_update;")
        .unwrap();
    db.execute(
        "UPDATE entry_meta SET record = CAST(replace(CAST(record AS TEXT), 'Appraisal', 'Appraisaj') AS BLOB) WHERE idx = ?1",
        [third as i64],
    )
    .unwrap();
    let bad = env.run(&["verify"]);
    assert_eq!(bad.code, 3, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("not the one its leaf commits to"),
        "{}",
        bad.stdout
    );
    db.execute("DELETE FROM entry_meta WHERE idx = ?1", [third as i64])
        .unwrap();
    let bad = env.run(&["verify"]);
    assert_eq!(bad.code, 3, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("no signed erasure records erasing it"),
        "{}",
        bad.stdout
    );
}

/// The daemon applies `[[retention.rules]]` on `[retention] schedule`: a version that stopped
/// being current years ago (written here with its old dates, through the library's writer)
/// is erased by the scheduled job, signed first; the current one stays.
#[test]
fn the_daemon_applies_retention_on_its_schedule() {
    use evident::ledger::leaf::{EntryStatement, PREDICATE_TYPE, Predicate};
    use evident::ledger::state::StateDir;
    use evident::ledger::writer::{ArtefactChange, NewEntry, WriteBatch, Writer};

    let env = Env::ready();
    let state = StateDir::new(env.state());
    let blobs = state.blobs();
    let writer = Writer::open(&state, "test.evident.local/aims").unwrap();
    let mut digests = Vec::new();
    for (body, at) in [
        (&b"2019 register of trainees\n"[..], "2020-01-10T09:00:00Z"),
        (&b"2020 register of trainees\n"[..], "2020-02-10T09:00:00Z"),
    ] {
        let stored = blobs.ingest_bytes(body, u64::MAX).unwrap();
        blobs.sync(&[stored.sha256]).unwrap();
        digests.push(hex(&stored.sha256));
        let uri = "file:///hr/trainees.csv";
        let st = EntryStatement::new(
            PREDICATE_TYPE,
            uri,
            &hex(&stored.sha256),
            Predicate {
                collected_at: at.into(),
                controls: vec!["A.7.4".into()],
                kind: "document".into(),
                size: Some(body.len().to_string()),
                source: "hr".into(),
                title: Some("Trainees".into()),
                uri: Some(uri.into()),
                ..Predicate::default()
            },
        );
        writer
            .append(WriteBatch {
                entries: vec![NewEntry::new(
                    st,
                    true,
                    ArtefactChange::Present {
                        fingerprint: None,
                        version: None,
                    },
                )],
                ..WriteBatch::default()
            })
            .unwrap();
    }
    writer.checkpoint().unwrap();
    drop(writer);
    let old = index_of(&env, "trainees.csv") - 1;
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + "\n[retention]\nschedule = \"* * * * * *\"\n\n[[retention.rules]]\nsource = \"hr\"\n\
           keep = \"1y\"\nreason = \"HR registers are kept one year after they are replaced\"\n";
    std::fs::write(env.config(), cfg).unwrap();

    let daemon = crate::daemon::Daemon::start(&env, false);
    daemon.expect_log("retention: erased the content of entries", 30);
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["erasures"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["erasures"][0]["entry"], old, "{v}");
    let blob = |d: &str| env.state().join(format!("blobs/sha256/{}/{d}", &d[..2]));
    assert!(
        !blob(&digests[0]).exists(),
        "the replaced version's content is gone"
    );
    assert!(blob(&digests[1]).exists(), "the current version's stays");
}

/// The edges of erasing v2 entries that a collector keeps seeing: other versions of the
/// document are named (they hold its title and URI); an unchanged file at the source is not
/// recorded again after its current version was erased, and its bytes do not come back into
/// the store; `--replay` never removes bytes a live entry holds again; and a blob a live
/// entry needs is missing for `verify`, whatever erasure names the same digest.
#[test]
fn erasing_what_a_collector_still_sees() {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace("[ledger]\n", "[ledger]\nleaf_version = 2\n"),
    )
    .unwrap();
    env.run(&["init"]).ok();
    let doc = |body: &str| {
        format!("---\ntitle: Review of Jane Q. Example\ncontrols: [A.7.4]\n---\n{body}\n")
    };
    let hr = env.docs().join("review-jane-q-example.md");
    std::fs::write(&hr, doc("first")).unwrap();
    env.run(&["collect"]).ok();
    let a = index_of(&env, "review-jane-q-example.md");
    std::fs::write(&hr, doc("second")).unwrap();
    env.run(&["collect"]).ok();
    let b = index_of(&env, "review-jane-q-example.md");
    assert!(b > a);
    let count = || -> i64 {
        rusqlite::Connection::open(env.state().join("evident.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM entries WHERE kind = 'document'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };

    // The current version alone: refused, naming the other version.
    let one = env.run(&["erase", &b.to_string(), "--reason", "REQ-7"]);
    assert_eq!(one.code, 2, "{}", one.stderr);
    assert!(
        one.stderr.contains(&format!("entries {a} (")) && one.stderr.contains("title and URI"),
        "{}",
        one.stderr
    );
    env.run(&[
        "erase",
        &b.to_string(),
        "--reason",
        "REQ-7",
        "--with-copies",
    ])
    .ok();
    let docs_before = count();

    // The file is still at its source, unchanged: the next collect records nothing, and
    // the erased bytes are not back in the store.
    env.run(&["collect"]).ok();
    assert_eq!(
        count(),
        docs_before,
        "an unchanged file is not recorded again"
    );
    assert_absent(
        "the blob store",
        &bytes_under(&env.state().join("blobs")),
        &[doc("second").into_bytes()],
    );
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    // The same bytes under another name are a new, live entry: --replay leaves them.
    std::fs::write(env.docs().join("copy.md"), doc("second")).unwrap();
    env.run(&["collect"]).ok();
    let copy = index_of(&env, "copy.md");
    let r = env
        .run(&["--format", "json", "erase", "--replay"])
        .ok()
        .json();
    assert_eq!(r, serde_json::json!([]), "{r}");
    let v = env.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    // Lose that blob: verify names it missing, though an erasure names its digest.
    lose_blob(&env, copy);
    let bad = env.run(&["verify"]);
    assert_eq!(bad.code, 3, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("is missing from the blob store"),
        "{}",
        bad.stdout
    );
}
