//! The commands as a compliance lead uses them.

use base64::Engine;
use evident::ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use evident::ledger::note::{Checkpoint, NoteVerifier, TlogProof};

use crate::common::{Env, fails_with};

#[test]
fn init_twice_keeps_the_key_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let first = env.run(&["init"]).ok();
    let key = first.stdout.trim().to_owned();
    assert!(key.starts_with("test.evident.local/aims+"), "{key}");
    NoteVerifier::parse(&key).unwrap();
    env.run(&["collect"]).ok();
    // Issue 11, item 7: a second init refuses instead of (re)writing keys.
    let second = env.run(&["init"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("already holds a ledger"),
        "{}",
        second.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.state().join("verifier.vkey"))
            .unwrap()
            .trim(),
        key
    );
    // Nothing recorded was lost by the second init.
    let q = env.run(&["query", "A.2", "--format", "json"]).ok().json();
    assert_eq!(q.as_array().unwrap().len(), 2);
    for f in ["signing.key", "evident.db"] {
        let mode = std::fs::metadata(env.state().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is {mode:o}");
    }
    assert_eq!(
        std::fs::metadata(env.state()).unwrap().permissions().mode() & 0o077,
        0
    );
}

#[test]
fn query_prefix_returns_sub_controls_as_json() {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    let rows = env.run(&["query", "A.2", "--format", "json"]).ok().json();
    let rows = rows.as_array().unwrap();
    let titles: Vec<&str> = rows.iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 2, "{rows:?}");
    assert!(
        titles.contains(&"AI Policy") && titles.contains(&"Policy review"),
        "{titles:?}"
    );
    for r in rows {
        assert!(r["index"].is_u64());
        assert_eq!(r["kind"], "document");
        assert_eq!(r["source"], "docs");
        assert!(r["uri"].as_str().unwrap().starts_with("file://docs/"));
        assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
        assert!(r["collected_at"].as_str().unwrap().ends_with('Z'));
        assert!(
            r["controls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c.as_str().unwrap().starts_with("A.2."))
        );
    }
    let policy = rows.iter().find(|r| r["title"] == "AI Policy").unwrap();
    assert_eq!(policy["effective_date"], "2026-01-15");
    let content = std::fs::read(env.docs().join("policy.md")).unwrap();
    assert_eq!(
        policy["sha256"].as_str().unwrap(),
        evident::ledger::leaf::hex(&<sha2::Sha256 as sha2::Digest>::digest(&content))
    );

    // Rules map by path; a clause prefix works too.
    let a5 = env.run(&["query", "A.5.3", "--format", "json"]).ok().json();
    assert_eq!(a5[0]["uri"], "file://docs/impact/fraud.md");
    assert_eq!(a5[0]["title"], "Fraud model impact assessment");
    // Time window: nothing before 2000, everything until far in the future.
    let none = env
        .run(&["query", "A.2", "--until", "2000-01-01", "--format", "json"])
        .ok()
        .json();
    assert_eq!(none.as_array().unwrap().len(), 0);
    let all = env
        .run(&[
            "query",
            "A.2",
            "--since",
            "2000-01-01",
            "--until",
            "2999-12-31",
            "--format",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let csv = env.run(&["query", "A.2", "--format", "csv"]).ok();
    assert!(
        csv.stdout.starts_with(
            "index,collected_at,kind,state,source,title,uri,controls,sha256,effective_date,superseded_by\n"
        )
    );
    assert_eq!(csv.stdout.lines().count(), 3);
}

#[test]
fn recollect_records_only_changes_and_removals() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let first = env.run(&["collect", "--format", "json"]).ok().json();
    assert_eq!(first["collectors"][0]["new"], 5);
    let again = env.run(&["collect", "--format", "json"]).ok().json();
    assert_eq!(again["collectors"][0]["new"], 0);
    assert_eq!(again["collectors"][0]["unchanged"], 5);

    // Touch without change: no entry; change: one; delete: one removal.
    let card = env.docs().join("card.md");
    let bytes = std::fs::read(&card).unwrap();
    std::fs::write(&card, &bytes).unwrap();
    std::fs::write(
        env.docs().join("review.md"),
        "---\ncontrols: [A.2.4]\n---\n# Policy review, amended\n",
    )
    .unwrap();
    std::fs::remove_file(env.docs().join("minutes.txt")).unwrap();
    let third = env.run(&["collect", "--format", "json"]).ok().json();
    let s = &third["collectors"][0];
    assert_eq!(
        (
            s["new"].as_u64(),
            s["removed"].as_u64(),
            s["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(3)),
        "{third}"
    );
    let a24 = env.run(&["query", "A.2.4", "--format", "json"]).ok().json();
    let titles: Vec<&str> = a24
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Policy review", "Policy review, amended"]);
    // --full re-reads everything but still finds nothing new.
    let full = env
        .run(&["collect", "--full", "--format", "json"])
        .ok()
        .json();
    assert_eq!(full["collectors"][0]["new"], 0);
    env.run(&["verify"]).ok();
}

/// `(status, items_in_window)` of one control in `coverage --format json`.
fn coverage_of(env: &Env, control: &str, extra: &[&str]) -> (String, u64, String) {
    let mut args = vec!["coverage", "--controls", control, "--format", "json"];
    args.extend(extra);
    let cov = env.run(&args).ok().json();
    let c = &cov["controls"][0];
    (
        c["status"].as_str().unwrap().to_owned(),
        c["items_in_window"].as_u64().unwrap(),
        c["why"].as_str().unwrap().to_owned(),
    )
}

fn states(env: &Env, control: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["query", control, "--format", "json"];
    args.extend(extra);
    env.run(&args)
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["title"].as_str().unwrap_or_default().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Issue 12, item 4: a removed or superseded version no longer counts in coverage, the SoA
/// and the bundle; `query` marks it and `--current` leaves it out; verify guards the record.
#[test]
fn removed_and_superseded_versions_stop_counting() {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    assert_eq!(coverage_of(&env, "A.6.2.7", &[]).0, "fresh");

    // The only A.6.2.7 document is deleted; the review is amended (a second later, so the
    // versions have distinct collection times).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::remove_file(env.docs().join("card.md")).unwrap();
    std::fs::write(
        env.docs().join("review.md"),
        "---\ncontrols: [A.2.4]\n---\n# Policy review, amended\n",
    )
    .unwrap();
    env.run(&["collect"]).ok();

    let (status, n, why) = coverage_of(&env, "A.6.2.7", &[]);
    assert_eq!((status.as_str(), n), ("missing", 0), "{why}");
    assert!(why.contains("superseded or removed"), "{why}");
    let (status, n, _) = coverage_of(&env, "A.6.2.7", &["--include-history"]);
    assert_eq!((status.as_str(), n), ("fresh", 1));
    // Two versions of the review, one counts.
    assert_eq!(coverage_of(&env, "A.2.4", &[]).1, 1);
    assert_eq!(coverage_of(&env, "A.2.4", &["--include-history"]).1, 2);

    let soa_row = |extra: &[&str]| {
        let mut args = vec!["soa", "--format", "json"];
        args.extend(extra);
        let soa = env.run(&args).ok().json();
        soa.as_array()
            .unwrap()
            .iter()
            .find(|r| r["control"] == "A.6.2.7")
            .unwrap()
            .clone()
    };
    let row = soa_row(&[]);
    assert_eq!(
        (
            row["implementation"].as_str(),
            row["evidence_count"].as_u64()
        ),
        (Some("not evidenced"), Some(0))
    );
    assert_eq!(soa_row(&["--include-history"])["evidence_count"], 1);

    // query marks each row; --current keeps what coverage counts.
    assert_eq!(
        states(&env, "A.6.2.7", &[]),
        vec![("Model card".to_owned(), "removed".to_owned())]
    );
    assert!(states(&env, "A.6.2.7", &["--current"]).is_empty());
    let review = states(&env, "A.2.4", &[]);
    assert_eq!(
        review,
        vec![
            ("Policy review".to_owned(), "superseded".to_owned()),
            ("Policy review, amended".to_owned(), "current".to_owned()),
        ]
    );
    assert_eq!(states(&env, "A.2.4", &["--current"]), review[1..]);
    // As of a window that ends before the amendment, the first version was current.
    let first_at = env.run(&["query", "A.2.4", "--format", "json"]).ok().json()[0]["collected_at"]
        .as_str()
        .unwrap()
        .to_owned();
    // `--until` with a time includes that whole second.
    let then = states(&env, "A.2.4", &["--until", &first_at]);
    assert_eq!(
        then,
        vec![("Policy review".to_owned(), "current".to_owned())]
    );
    let table = env.run(&["query", "A.2.4"]).ok().stdout;
    assert!(
        table.contains("superseded") && table.contains("current"),
        "{table}"
    );

    // The bundle's coverage, SoA and report count the same way.
    let out = env.path().join("bundle");
    env.run(&["export", "--out", out.to_str().unwrap()]).ok();
    let coverage = std::fs::read_to_string(out.join("coverage.csv")).unwrap();
    let line = coverage
        .lines()
        .find(|l| l.starts_with("A.6.2.7,"))
        .unwrap();
    assert!(line.starts_with("A.6.2.7,missing,"), "{line}");
    let report = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(report.contains("current item(s)"));
    env.run(&["verify"]).ok();

    // A ledger from before schema v7 is brought up to date with the same record.
    let before = (states(&env, "A.6.2.7", &[]), states(&env, "A.2.4", &[]));
    {
        let c = env.tamper_db();
        c.execute_batch("DROP TABLE superseded; DROP TABLE runs; PRAGMA user_version = 6;")
            .unwrap();
    }
    env.run(&["collect"]).ok();
    assert_eq!(
        before,
        (states(&env, "A.6.2.7", &[]), states(&env, "A.2.4", &[]))
    );
    env.run(&["verify"]).ok();

    // A backdated, a redirected or a dropped row is noticed by verify.
    let db = env.state().join("evident.db");
    let saved = std::fs::read(&db).unwrap();
    for tamper in [
        "UPDATE superseded SET at = '2020-01-01T00:00:00Z' WHERE removal = 1",
        "UPDATE superseded SET by_idx = by_idx + 1 WHERE removal = 0",
        "DELETE FROM superseded WHERE removal = 1",
    ] {
        env.tamper_db().execute(tamper, []).unwrap();
        fails_with(env.run(&["verify"]), "superseded and removed versions");
        std::fs::write(&db, &saved).unwrap();
        env.run(&["verify"]).ok();
    }
}

/// A renamed collector leaves its artefacts current under the old name; coverage says so.
#[test]
fn evidence_of_a_collector_no_longer_configured_is_pointed_out() {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    assert!(
        !env.run(&["coverage"])
            .ok()
            .stderr
            .contains("no longer in the config")
    );
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let renamed = cfg
        .replace("name = \"docs\"", "name = \"policies\"")
        .replace("collector = \"docs\"", "collector = \"policies\"");
    std::fs::write(env.config(), renamed).unwrap();
    let r = env.run(&["coverage"]).ok();
    assert!(
        r.stderr
            .contains("no longer in the config still counts: docs (5)"),
        "{}",
        r.stderr
    );
}

/// Issue 12, item 10: a run that recorded nothing and kept its outcome appends no entry; the
/// run history has every run; the heartbeat still proves the collector alive.
#[test]
fn idle_runs_append_no_entry_until_their_outcome_changes_or_the_heartbeat() {
    let env = Env::new();
    let flaky = env.path().join("flaky.sh");
    std::fs::write(
        &flaky,
        "#!/bin/sh\nif [ -e ok ]; then exit 0; fi\necho \"down, request $(date +%s%N)\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&flaky, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = std::fs::read_to_string(env.config()).unwrap().replace(
        "origin = \"test.evident.local/aims\"",
        "origin = \"test.evident.local/aims\"\nheartbeat = \"3s\"",
    ) + "\n[[collectors]]\nname = \"feed\"\nkind = \"command\"\nprogram = \"./flaky.sh\"\n";
    std::fs::write(env.config(), config).unwrap();
    env.run(&["init"]).ok();
    let db = env.state().join("evident.db");
    let count = |sql: &str, who: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [who], |r| r.get(0))
            .unwrap()
    };
    let entries = |who: &str| {
        count(
            "SELECT COUNT(*) FROM entries WHERE kind = 'collector_run' AND source = ?1",
            who,
        )
    };
    let runs = |who: &str| count("SELECT COUNT(*) FROM runs WHERE collector = ?1", who);

    // First runs: an entry each (the feed fails).
    assert_eq!(env.run(&["collect"]).code, 1);
    assert_eq!((entries("docs"), entries("feed")), (1, 1));
    // Nothing changed, the same failure (its text names another request each time): history
    // only.
    for _ in 0..2 {
        assert_eq!(env.run(&["collect"]).code, 1);
    }
    assert_eq!((entries("docs"), entries("feed")), (1, 1));
    assert_eq!((runs("docs"), runs("feed")), (3, 3));
    // A change, and a recovery (outcome changed), each append one.
    std::fs::write(env.docs().join("new.md"), "# New\n").unwrap();
    std::fs::write(env.path().join("ok"), "").unwrap();
    env.run(&["collect"]).ok();
    assert_eq!((entries("docs"), entries("feed")), (2, 2));
    env.run(&["collect"]).ok();
    assert_eq!((entries("docs"), entries("feed")), (2, 2));
    // After the heartbeat an idle run proves the collector is alive again.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    env.run(&["collect"]).ok();
    assert_eq!((entries("docs"), entries("feed")), (3, 3));
    assert_eq!((runs("docs"), runs("feed")), (6, 6));
    env.run(&["verify"]).ok();
    let history = env
        .run(&["runs", "feed", "--limit", "3", "--format", "json"])
        .ok()
        .json();
    let entry_of = |i: usize| history[i]["entry"].as_u64();
    assert_eq!(history.as_array().unwrap().len(), 3, "{history}");
    assert!(entry_of(0).is_some() && entry_of(1).is_none() && entry_of(2).is_some());
    assert_eq!(history[2]["error"], serde_json::Value::Null, "the recovery");

    // A ledger from before the run history gets it from its run entries.
    {
        let c = env.tamper_db();
        c.execute_batch("DROP TABLE runs; PRAGMA user_version = 8;")
            .unwrap();
    }
    env.run(&["collect"]).ok();
    assert_eq!(
        (runs("docs"), runs("feed")),
        (4, 4),
        "3 from entries, 1 new"
    );
    let first_error: Option<String> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT error FROM runs WHERE collector = 'feed' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(first_error.is_some_and(|e| e.contains("down")));
}

/// Issue 12, item 18: at 80 and 100 columns every table fits, and a cell wraps only between
/// words: each word shown is one of the cell's words, or a cut one (`start…end`), never half
/// a word continued on the next line.
#[test]
fn tables_fit_the_terminal_and_wrap_only_between_words() {
    let env = Env::new();
    let deep = env
        .docs()
        .join("impact/assessments/2026/quarterly-fraud-scoring-model-impact-assessment-v3");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(
        deep.join("final-signed-off-by-the-ai-governance-board.md"),
        "---\ntitle: Quarterly impact assessment of the fraud scoring model, signed off by the AI governance board\ncontrols: [A.5.3, A.5.4, A.6.2.4]\n---\n",
    )
    .unwrap();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    let words = |s: &str| -> std::collections::HashSet<String> {
        s.split(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | ';'))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // Wide enough for every column but not every whole URI: long words are cut, no column
    // is hidden, and the note says so.
    let mut wide = std::process::Command::new(crate::common::bin());
    wide.env("COLUMNS", "150");
    let r = env.run_with(wide, &["query", "A"]).ok();
    assert!(
        r.stdout.contains("controls") && r.stdout.contains("sha256"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("long words shortened") && !r.stderr.contains("hidden"),
        "{}",
        r.stderr
    );
    for columns in ["80", "100"] {
        for cmd in [
            &["coverage"][..],
            &["soa"],
            &["query", "A"],
            &["runs"],
            &["controls"],
        ] {
            let mut table_cmd = std::process::Command::new(crate::common::bin());
            table_cmd.env("COLUMNS", columns);
            let table = env.run_with(table_cmd, cmd).ok().stdout;
            let mut csv_args = cmd.to_vec();
            csv_args.extend(["--format", "csv"]);
            let allowed = words(&env.run(&csv_args).ok().stdout);
            let width: usize = columns.parse().unwrap();
            for line in table.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{cmd:?} at {columns}: {line}"
                );
                if !line.starts_with('│') {
                    continue;
                }
                for tok in words(&line.replace(['│', '┆'], " ")) {
                    let ok = if tok.contains('…') {
                        tok.split('…')
                            .filter(|p| !p.is_empty())
                            .all(|p| allowed.iter().any(|w| w.contains(p)))
                    } else {
                        // Dates are shown without their time.
                        allowed.contains(&tok)
                            || allowed.iter().any(|w| w.starts_with(&format!("{tok}T")))
                    };
                    assert!(ok, "{cmd:?} at {columns}: {tok:?} is half a word\n{table}");
                }
            }
        }
    }
}

#[test]
fn checkpoint_proof_and_consistency_check_out_independently() {
    let env = Env::new();
    let vkey = env.run(&["init"]).ok().stdout.trim().to_owned();
    let verifier = NoteVerifier::parse(&vkey).unwrap();
    env.run(&["collect"]).ok();
    let cp1 = env.run(&["checkpoint"]).ok().stdout;
    let again = env.run(&["checkpoint"]).ok();
    assert_eq!(again.stdout, cp1, "same tree, same checkpoint");
    let old = Checkpoint::open(&cp1, &verifier).unwrap();

    std::fs::write(env.docs().join("new.md"), "# New evidence\n").unwrap();
    env.run(&["collect"]).ok();
    // Proof before a covering checkpoint: a clear error.
    let size: u64 = old.size;
    let early = env.run(&["proof", &size.to_string()]);
    assert_eq!(early.code, 1);
    assert!(
        early.stderr.contains("evident checkpoint"),
        "{}",
        early.stderr
    );
    let cp2 = env.run(&["checkpoint"]).ok().stdout;
    let new = Checkpoint::open(&cp2, &verifier).unwrap();
    assert!(new.size > old.size);

    // Every entry's receipt verifies against the new checkpoint with the leaf bytes alone.
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    for idx in 0..new.size {
        let receipt = env.run(&["proof", &idx.to_string()]).ok().stdout;
        let p = TlogProof::parse(&receipt).unwrap();
        assert_eq!(p.index, idx);
        let cp = Checkpoint::open(&p.checkpoint, &verifier).unwrap();
        assert_eq!(cp, new);
        let leaf: Vec<u8> = db
            .query_row(
                "SELECT leaf FROM entries WHERE idx = ?1",
                [idx as i64],
                |r| r.get(0),
            )
            .unwrap();
        assert!(verify_inclusion(
            &leaf_hash(&leaf),
            idx,
            cp.size,
            &p.path,
            &cp.root
        ));
    }
    // The old checkpoint, kept outside, still verifies as a prefix of the ledger.
    let kept = env.path().join("kept.checkpoint");
    std::fs::write(&kept, &cp1).unwrap();
    let v = env
        .run(&[
            "verify",
            "--key",
            &vkey,
            "--checkpoint",
            kept.to_str().unwrap(),
        ])
        .ok();
    assert!(v.stdout.contains("OK"), "{}", v.stdout);
    // A consistency proof computed by the library agrees with both signed roots.
    let reader =
        evident::ledger::reader::Reader::open(&evident::ledger::state::StateDir::new(env.state()))
            .unwrap();
    let proof = evident::ledger::merkle::consistency_proof(&reader, old.size, new.size).unwrap();
    assert!(verify_consistency(
        old.size, new.size, &proof, &old.root, &new.root
    ));
    // The checkpoint body is plain C2SP: origin, size, base64 root.
    let root_line = cp2.lines().nth(2).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(root_line)
            .unwrap(),
        new.root
    );
}

#[test]
fn a_checkpoint_of_the_empty_tree_stays_valid() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let empty = env.run(&["checkpoint"]).ok().stdout;
    assert!(
        empty.contains("\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"),
        "{empty}"
    );
    env.run(&["collect"]).ok();
    env.run(&["checkpoint"]).ok();
    let v = env.run(&["verify"]).ok();
    assert!(v.stdout.contains("checkpoints  ok"), "{}", v.stdout);
    // Issue 12, item 5: a bundle carries no `consistency/0-N` (RFC 9162 defines proofs only
    // for 0 < m < n; Go's tlog refuses them), and the empty checkpoint still counts as a
    // previous checkpoint the tree extends.
    let out = env.path().join("b");
    env.run(&["export", "--out", out.to_str().unwrap()]).ok();
    assert!(
        !out.join("consistency").exists()
            || std::fs::read_dir(out.join("consistency"))
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("0-"))
    );
    assert!(!out.join("checkpoints/0").exists());
    let prev = env.path().join("empty.checkpoint");
    std::fs::write(&prev, &empty).unwrap();
    crate::common::verify_bundle(
        &env,
        &out,
        &["--previous-checkpoint", prev.to_str().unwrap()],
    )
    .ok();
}

#[test]
fn manual_evidence_is_recorded_once() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let minutes = env.path().join("board-minutes.txt");
    std::fs::write(&minutes, "Board approved the AI policy.").unwrap();
    let m = "board-minutes.txt";
    // `add` runs where the user stands: URIs come from the path as given.
    let here = |args: &[&str]| {
        let mut c = std::process::Command::new(crate::common::bin());
        c.current_dir(env.path());
        env.run_with(c, args)
    };
    let added = here(&[
        "add",
        m,
        "--control",
        "A.2.2",
        "-C",
        "5.1",
        "--title",
        "Board minutes",
        "--effective-date",
        "2026-10-14",
        "--format",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(added[0]["uri"], "manual://board-minutes.txt");
    assert_eq!(added[0]["controls"], serde_json::json!(["A.2.2", "5.1"]));
    let again = here(&["add", m, "-C", "A.2.2", "-C", "5.1", "--format", "json"]).ok();
    assert_eq!(again.json().as_array().unwrap().len(), 0);
    assert!(again.stderr.contains("already recorded"));
    // The same content with other controls is a re-mapping: a new entry, same digest.
    let remap = here(&[
        "add", m, "-C", "A.2.2", "-C", "5.1", "-C", "9.3", "--format", "json",
    ])
    .ok()
    .json();
    assert_eq!(remap[0]["sha256"], added[0]["sha256"]);
    assert_eq!(
        remap[0]["controls"],
        serde_json::json!(["A.2.2", "5.1", "9.3"])
    );
    let q = env.run(&["query", "5.1", "--format", "json"]).ok().json();
    assert_eq!(q[0]["effective_date"], "2026-10-14");
    assert_eq!(q[0]["source"], "manual");
    // Works from the state directory alone too.
    let by_state = std::process::Command::new(crate::common::bin())
        .args([
            "--state-dir",
            env.state().to_str().unwrap(),
            "--config",
            "/nonexistent/evident.toml",
            "query",
            "5.1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        by_state.status.success(),
        "{}",
        String::from_utf8_lossy(&by_state.stderr)
    );
    // Bad control and bad date are usage errors.
    assert_eq!(env.run(&["add", m, "--control", "A.2.9"]).code, 2);
    assert_eq!(
        env.run(&[
            "add",
            m,
            "--control",
            "A.2.2",
            "--effective-date",
            "14/10/2026"
        ])
        .code,
        2
    );
    env.run(&["verify"]).ok();
    // Issue 12, item 3: two files of one name in two folders are two documents; --uri
    // records a new version of a chosen one.
    for q in ["q3", "q4"] {
        std::fs::create_dir_all(env.path().join(q)).unwrap();
        std::fs::write(env.path().join(q).join("minutes.pdf"), format!("%PDF {q}")).unwrap();
    }
    let a = here(&[
        "add",
        "q3/minutes.pdf",
        "./q4/../q4/minutes.pdf",
        "-C",
        "9.3",
        "--format",
        "json",
    ])
    .ok()
    .json();
    let uris: Vec<&str> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["manual://q3/minutes.pdf", "manual://q4/minutes.pdf"]);
    let v = here(&[
        "add",
        "q4/minutes.pdf",
        "--uri",
        "manual://q3/minutes.pdf",
        "-C",
        "9.3",
        "--format",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(v[0]["uri"], "manual://q3/minutes.pdf");
    let two = here(&[
        "add",
        "q3/minutes.pdf",
        "q4/minutes.pdf",
        "--uri",
        "manual://x",
        "-C",
        "9.3",
    ]);
    assert_eq!(two.code, 2, "{}", two.stderr);
}

#[test]
fn controls_lists_the_catalogue() {
    let env = Env::new();
    let all = env.run(&["controls", "--format", "json"]).ok().json();
    let all = all.as_array().unwrap();
    assert_eq!(
        all.iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with("A."))
            .count(),
        38
    );
    assert!(all.iter().any(|r| r["id"] == "10.2"));
    let a622 = all.iter().find(|r| r["id"] == "A.6.2.2").unwrap();
    assert!(a622["nist_ai_rmf"].as_array().is_some());
    assert!(a622["eu_ai_act"][0]["basis"].is_string());
    let a6 = env
        .run(&["controls", "A.6", "--annex-a", "--format", "csv"])
        .ok();
    assert!(a6.stdout.starts_with("id,title,group,evidence kinds\n"));
    assert_eq!(a6.stdout.lines().count(), 10);
    let table = env.run(&["controls", "A.2"]).ok();
    assert!(table.stdout.contains("AI policy"));
}

#[test]
fn config_check_and_help() {
    let env = Env::new();
    let ok = env.run(&["config", "check"]).ok();
    assert!(
        ok.stdout.contains("valid (1 collector(s), 1 rule(s)"),
        "{}",
        ok.stdout
    );
    let help = env.run(&["query", "--help"]).ok();
    assert!(help.stdout.contains("A prefix selects"));
    let top = env.run(&["--help"]).ok();
    assert!(top.stdout.contains("Exit codes"));
    assert_eq!(env.run(&["frobnicate"]).code, 2);
}

#[test]
fn files_above_the_size_limit_keep_only_their_digest() {
    let env = Env::new();
    std::fs::write(
        env.config(),
        crate::common::CONFIG.replace("schedule =", "max_file_size = \"40B\"\nschedule ="),
    )
    .unwrap();
    env.run(&["init"]).ok();
    std::fs::write(env.docs().join("big.md"), "x".repeat(4096)).unwrap();
    env.run(&["collect"]).ok();
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let (has_blob, size, sha): (bool, i64, Vec<u8>) = db
        .query_row(
            "SELECT has_blob, size, sha256 FROM entries WHERE uri = 'file://docs/big.md'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(!has_blob);
    assert_eq!(size, 4096);
    let hex = evident::ledger::leaf::hex(&sha);
    assert!(
        !env.state()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .exists()
    );
    // Small files still have their content kept, and the ledger verifies.
    let small: bool = db
        .query_row(
            "SELECT has_blob FROM entries WHERE uri = 'file://docs/minutes.txt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(small);
    env.run(&["verify"]).ok();
}

/// Issue 11, item 7: a lost signing key is named as such; init never forks the identity.
#[test]
fn a_lost_key_is_reported_and_init_does_not_replace_it() {
    let env = Env::new();
    let key = env.run(&["init"]).ok().stdout.trim().to_owned();
    env.run(&["collect"]).ok();
    std::fs::remove_file(env.state().join("signing.key")).unwrap();
    let cp = env.run(&["checkpoint"]);
    assert_eq!(cp.code, 1, "{}", cp.stderr);
    assert!(cp.stderr.contains("signing key"), "{}", cp.stderr);
    assert!(cp.stderr.contains("is missing"), "{}", cp.stderr);
    assert!(
        !cp.stderr.contains("run `evident init` first"),
        "{}",
        cp.stderr
    );
    let init = env.run(&["init"]);
    assert_eq!(init.code, 1, "{}", init.stderr);
    assert!(init.stderr.contains("restore"), "{}", init.stderr);
    assert!(!env.state().join("signing.key").exists());
    assert_eq!(
        std::fs::read_to_string(env.state().join("verifier.vkey"))
            .unwrap()
            .trim(),
        key
    );
}

/// Issue 11, item 6: one writer per job. Two collects at once record each file once;
/// `--no-wait` refuses while another holds the job, and a waiting one says so.
#[test]
fn two_collects_at_once_record_each_file_once() {
    let env = Env::new();
    let bulk = env.docs().join("bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..2000 {
        std::fs::write(bulk.join(format!("f{i:04}.md")), format!("# Note {i}\n")).unwrap();
    }
    env.run(&["init"]).ok();
    let spawn = || {
        std::process::Command::new(crate::common::bin())
            .arg("--config")
            .arg(env.config())
            .args(["-q", "collect"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let docs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM entries WHERE kind = 'document'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(docs, 2000 + 5);

    // Hold the collector's job lock as another process would.
    let lock = std::fs::File::open(env.state().join("locks/collector-docs.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let refused = env.run(&["collect", "--no-wait"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("in progress in another Evident process"),
        "{}",
        refused.stderr
    );
    let mut waiting = std::process::Command::new(crate::common::bin())
        .arg("--config")
        .arg(env.config())
        .arg("collect")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(waiting.stderr.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("waiting"), "{first}");
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "it must wait for the lock"
    );
    drop(lock);
    assert!(waiting.wait().unwrap().success());
}

/// Issue 11, items 2 and 4: files swapped for links (to the signing key, to /etc) and FIFOs
/// while a large tree is collected. Every collect ends, and no entry or blob ever holds the
/// digest of anything but the tree's own content.
#[test]
fn swapping_files_for_links_and_fifos_during_collect_records_nothing_outside_the_root() {
    use sha2::{Digest, Sha256};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = Env::new();
    let root = env.docs().join("bulk");
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let n = 1500;
    env.run(&["init"]).ok();
    let key = env.state().join("signing.key");
    // Every third file looks like the key to a size-and-mtime check: same length, same mtime.
    let key_len = std::fs::metadata(&key).unwrap().len() as usize;
    let key_mtime = std::fs::metadata(&key).unwrap().modified().unwrap();
    let content = move |i: usize| {
        let s = format!("# Note {i}\n{}\n", "x".repeat(i % 97));
        if i.is_multiple_of(3) {
            format!("{s:-<key_len$}").chars().take(key_len).collect()
        } else {
            s
        }
    };
    let write = move |p: &std::path::Path, i: usize| {
        std::fs::write(p, content(i))?;
        if i.is_multiple_of(3) {
            std::fs::File::options()
                .write(true)
                .open(p)?
                .set_modified(key_mtime)?;
        }
        std::io::Result::Ok(())
    };
    let path = {
        let (root, sub) = (root.clone(), sub.clone());
        move |i: usize| {
            if i.is_multiple_of(10) {
                sub.join(format!("f{i:04}.md"))
            } else {
                root.join(format!("f{i:04}.md"))
            }
        }
    };
    for i in 0..n {
        write(&path(i), i).unwrap();
    }
    let mut allowed: std::collections::HashSet<String> = (0..n)
        .map(|i| evident::ledger::leaf::hex(Sha256::digest(content(i).as_bytes()).as_slice()))
        .collect();
    for f in std::fs::read_dir(env.docs()).unwrap().flatten() {
        if f.path().is_file() {
            allowed.insert(evident::ledger::leaf::hex(
                Sha256::digest(std::fs::read(f.path()).unwrap()).as_slice(),
            ));
        }
    }
    for f in std::fs::read_dir(env.docs().join("impact"))
        .unwrap()
        .flatten()
    {
        allowed.insert(evident::ledger::leaf::hex(
            Sha256::digest(std::fs::read(f.path()).unwrap()).as_slice(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (root, sub, key, path) = (root.clone(), sub.clone(), key.clone(), path.clone());
        std::thread::spawn(move || {
            let mut k = 0usize;
            // A rolling window of swapped files: each stays a link or FIFO for a while, then
            // becomes the regular file again, so scans and reads straddle both states.
            let mut swapped = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let i = (k * 3 * 7919) % n;
                let p = path(i);
                let _ = std::fs::remove_file(&p);
                match k % 3 {
                    0 | 1 => {
                        let _ = std::os::unix::fs::symlink(&key, &p);
                    }
                    _ => {
                        let _ = rustix::fs::mknodat(
                            rustix::fs::CWD,
                            &p,
                            rustix::fs::FileType::Fifo,
                            rustix::fs::Mode::from_raw_mode(0o600),
                            0,
                        );
                    }
                }
                swapped.push_back(i);
                if swapped.len() > 40 {
                    let j = swapped.pop_front().unwrap_or(0);
                    let q = path(j);
                    let _ = std::fs::remove_file(&q);
                    let _ = write(&q, j);
                }
                // A directory on the way becomes a link to /etc for a moment.
                if k.is_multiple_of(200) {
                    let real = root.join("sub.real");
                    if std::fs::rename(&sub, &real).is_ok() {
                        let _ = std::os::unix::fs::symlink("/etc", &sub);
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        let _ = std::fs::remove_file(&sub);
                        let _ = std::fs::rename(&real, &sub);
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            for j in swapped {
                let q = path(j);
                let _ = std::fs::remove_file(&q);
                let _ = write(&q, j);
            }
        })
    };
    for _ in 0..8 {
        let mut child = std::process::Command::new(crate::common::bin())
            .arg("--config")
            .arg(env.config())
            .args(["-q", "collect"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!("collect hung while files were swapped");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let mut st = db
        .prepare("SELECT uri, hex(sha256) FROM entries WHERE kind = 'document'")
        .unwrap();
    let rows: Vec<(String, String)> = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)?.to_lowercase()))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.len() >= n, "{} document entries", rows.len());
    for (uri, sha) in &rows {
        assert!(
            allowed.contains(sha),
            "{uri} recorded content from outside the tree: {sha}"
        );
    }
    let forbidden = [
        std::fs::read(&key).unwrap(),
        std::fs::read("/etc/passwd").unwrap(),
    ];
    for (p, bytes) in crate::common::state_bytes(&env.state()) {
        if p.starts_with(env.state().join("blobs")) {
            for f in &forbidden {
                assert_ne!(
                    &bytes,
                    f,
                    "{} is a copy of a file outside the root",
                    p.display()
                );
            }
        }
    }
}

/// Runs `evident collect` with a file-size limit, as a full disk would refuse writes.
fn collect_with_fsize(env: &Env, limit: u64) -> crate::common::Run {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={limit} \"$0\" \"$@\""
        ))
        .arg(crate::common::bin());
    env.run_with(cmd, &["collect"])
}

/// Issue 11, item 8: a run that could not write everything says `partial`, not `ok`; a
/// failed commit names its error once and leaves no orphan blobs; the next run recovers.
#[test]
fn a_full_disk_leaves_no_orphans_and_says_so_once() {
    let env = Env::new();
    env.run(&["init"]).ok();
    // One file too large to store under the limit: that item fails, the rest are recorded.
    std::fs::write(env.docs().join("big.bin"), vec![7u8; 400_000]).unwrap();
    let r = collect_with_fsize(&env, 300_000);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("docs"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.contains("partial"), "{}", r.stdout);
    std::fs::remove_file(env.docs().join("big.bin")).unwrap();

    // Many files: their blobs fit, the database does not.
    let bulk = env.docs().join("bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..300 {
        std::fs::write(
            bulk.join(format!("f{i}.txt")),
            format!("{i}:{}", "y".repeat(20_000 + i)),
        )
        .unwrap();
    }
    let r = collect_with_fsize(&env, 150_000);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = r
        .stderr
        .lines()
        .find(|l| l.starts_with("error: ledger"))
        .unwrap_or_default();
    assert!(!err.is_empty(), "{}", r.stderr);
    let parts: Vec<&str> = err.split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(p), "repeated {p:?} in {err}");
    }
    // Every blob left is named by an entry.
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let named: std::collections::HashSet<String> = db
        .prepare("SELECT lower(hex(sha256)) FROM entries WHERE has_blob = 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (p, _) in crate::common::state_bytes(&env.state()) {
        if p.starts_with(env.state().join("blobs/sha256")) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(named.contains(&name), "orphan blob {}", p.display());
        }
    }
    // With room again, everything is recorded and verifies.
    env.run(&["collect"]).ok();
    let docs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM artefacts WHERE uri LIKE 'file://docs/bulk/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(docs, 300);
    env.run(&["verify"]).ok();
}

/// Issue 11, item 7: `evident backup` taken while a collect writes is one consistent
/// ledger: restored, it verifies, and a later collect fills in what came after it.
#[test]
fn a_backup_taken_during_collection_restores_and_verifies() {
    let env = Env::new();
    let bulk = env.docs().join("bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..3000 {
        std::fs::write(
            bulk.join(format!("f{i:04}.md")),
            format!("# Note {i}\n{}", "z".repeat(i)),
        )
        .unwrap();
    }
    env.run(&["init"]).ok();
    let mut collect = std::process::Command::new(crate::common::bin())
        .arg("--config")
        .arg(env.config())
        .args(["-q", "collect"])
        .spawn()
        .unwrap();
    // Backups one after another for as long as the collect runs (it commits every 1,000).
    let mut backups = Vec::new();
    let mut during = 0;
    for k in 0..40 {
        let dir = env.path().join(format!("backup-{k}"));
        let b = env
            .run(&["backup", dir.to_str().unwrap(), "--format", "json"])
            .ok()
            .json();
        backups.push((dir, b));
        if collect.try_wait().unwrap().is_some() {
            break;
        }
        during += 1;
    }
    assert!(during >= 1, "no backup was taken while the collect ran");
    assert!(collect.wait().unwrap().success());
    // Not into a directory that holds something.
    let again = env.run(&["backup", backups[0].0.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    for (dir, summary) in &backups {
        let v = env.run(&["--state-dir", dir.to_str().unwrap(), "verify"]);
        assert_eq!(v.code, 0, "{summary}\n{}{}", v.stdout, v.stderr);
        for f in ["signing.key", "evident.db"] {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(dir.join(f)).unwrap().permissions(),
            );
            assert_eq!(mode & 0o077, 0, "{f} is {mode:o}");
        }
    }
    // Restore the first backup in place of the state directory and carry on.
    let (first, summary) = &backups[0];
    std::fs::remove_dir_all(env.state()).unwrap();
    std::fs::rename(first, env.state()).unwrap();
    env.run(&["verify"]).ok();
    env.run(&["collect"]).ok();
    let n: i64 = rusqlite::Connection::open(env.state().join("evident.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM artefacts WHERE uri LIKE 'file://docs/bulk/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3000, "{summary}");
    env.run(&["checkpoint"]).ok();
    env.run(&["verify"]).ok();
}

/// Issue 12, item 17: `evident show N` writes an entry's content (re-hashed), `--meta` its
/// leaf; a rotten blob is refused and leaves no file.
#[test]
fn show_writes_content_or_leaf_and_refuses_a_rotten_blob() {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    let q = env.run(&["query", "A.2.2", "--format", "json"]).ok().json();
    let e = q
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uri"] == "file://docs/policy.md")
        .unwrap()
        .clone();
    let i = e["index"].as_u64().unwrap().to_string();
    let want = std::fs::read(env.docs().join("policy.md")).unwrap();
    let r = env.run(&["show", &i]).ok();
    assert_eq!(r.stdout.as_bytes(), want.as_slice());
    let out = env.path().join("copy.md");
    env.run(&["show", &i, "--out", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), want);
    // Never overwrites.
    let again = env.run(&["show", &i, "--out", out.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    let meta = env.run(&["show", &i, "--meta"]).ok().json();
    assert_eq!(meta["predicate"]["uri"], "file://docs/policy.md");
    assert_eq!(meta["subject"][0]["digest"]["sha256"], e["sha256"]);
    // A blob altered behind the ledger's back.
    let sha = e["sha256"].as_str().unwrap();
    let blob = env.state().join("blobs/sha256").join(&sha[..2]).join(sha);
    let mut perm = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&blob, perm).unwrap();
    std::fs::write(&blob, "forged").unwrap();
    let bad = env.path().join("bad.md");
    let r = env.run(&["show", &i, "--out", bad.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("altered"), "{}", r.stderr);
    assert!(!bad.exists());
    let none = env.run(&["show", "999999"]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("there is no entry 999999"),
        "{}",
        none.stderr
    );
}

/// Issue 12, item 18: every command's `--help` teaches by example.
#[test]
fn every_command_help_has_examples() {
    for cmd in [
        &["init"][..],
        &["run"],
        &["collect"],
        &["add"],
        &["query"],
        &["coverage"],
        &["soa"],
        &["controls"],
        &["checkpoint"],
        &["proof"],
        &["show"],
        &["export"],
        &["verify"],
        &["backup"],
        &["runs"],
        &["config", "check"],
        &["man"],
        &["completions"],
    ] {
        let o = std::process::Command::new(crate::common::bin())
            .args(cmd)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{cmd:?}");
        assert!(
            help.contains("Examples:\n  evident"),
            "{cmd:?} --help has no examples:\n{help}"
        );
    }
}

/// Issue 12, item 18: JSON output has stable types, as docs/json.md says: no tuples (arrays
/// mixing types), no composite strings where fields belong (the SoA's newest item, a
/// verified checkpoint).
#[test]
fn json_output_has_no_tuples_or_composite_fields() {
    fn mixed(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Array(a) => {
                let kinds: std::collections::HashSet<&str> = a
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::Null => "null",
                        serde_json::Value::Bool(_) => "bool",
                        serde_json::Value::Number(_) => "number",
                        serde_json::Value::String(_) => "string",
                        serde_json::Value::Array(_) => "array",
                        serde_json::Value::Object(_) => "object",
                    })
                    .collect();
                if kinds.len() > 1 {
                    out.push(path.to_owned());
                }
                for (i, x) in a.iter().enumerate() {
                    mixed(x, &format!("{path}[{i}]"), out);
                }
            }
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    mixed(x, &format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    env.run(&["checkpoint"]).ok();
    let out = env.path().join("b");
    let key = env.state().join("verifier.vkey");
    let mut docs = Vec::new();
    for args in [
        vec!["collect"],
        vec!["query", "A"],
        vec!["coverage"],
        vec!["soa"],
        vec!["controls", "A.6"],
        vec!["checkpoint"],
        vec!["proof", "1"],
        vec!["verify"],
        vec!["export", "--out", out.to_str().unwrap()],
        vec![
            "verify",
            out.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        vec!["runs"],
    ] {
        let mut a = args.clone();
        a.extend(["--format", "json"]);
        let v = env.run(&a).ok().json();
        let mut bad = Vec::new();
        mixed(&v, "", &mut bad);
        assert!(bad.is_empty(), "{args:?}: mixed arrays at {bad:?}");
        docs.push(v);
    }
    let soa = &docs[3];
    let row = soa
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["control"] == "A.2.2")
        .unwrap();
    assert!(row["newest"]["index"].is_u64(), "{row}");
    assert!(docs[7]["checkpoint"]["size"].is_u64(), "{}", docs[7]);
    assert!(docs[9]["checkpoint"]["root"].is_string(), "{}", docs[9]);
}

/// Issue 12, item 16: `evident man` prints the manual page and `evident completions SHELL`
/// a completion script, both from the command line's own definition.
#[test]
fn man_page_and_completions_cover_every_command() {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(crate::common::bin())
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let man = run(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH evident 1"),
        "{}",
        &man[..200]
    );
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_evident()"), "{}", &bash[..100]);
    for cmd in [
        "init",
        "collect",
        "add",
        "query",
        "coverage",
        "soa",
        "export",
        "verify",
        "backup",
        "show",
        "runs",
        "completions",
    ] {
        assert!(man.contains(cmd), "man page lacks {cmd}");
        assert!(bash.contains(cmd), "bash completion lacks {cmd}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!run(&["completions", shell]).is_empty(), "{shell}");
    }
}
