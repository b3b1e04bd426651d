//! The log published as C2SP tiles: publication (first and incremental), `verify --tiles`,
//! the same tiles read by an independent client (Cloudflare's `tlog_tiles`, a port of Go's
//! `sumdb/tlog` tile reader, and its `signed_note`), and the tiles attacked.

use std::path::{Path, PathBuf};

use evident::ledger::leaf::{EntryStatement, PREDICATE_TYPE, Predicate, hex};
use evident::ledger::note::NoteVerifier;
use evident::ledger::reader::Reader;
use evident::ledger::state::StateDir;
use evident::ledger::writer::{ArtefactChange, NewEntry, WriteBatch, Writer};
use evident::tiles::check::{TileCheck, TileOptions, TileReport, verify_tiles};
use evident::tiles::layout::new_tiles;
use evident::tiles::publish::publish;
use evident::tiles::store::Store;
use sha2::{Digest, Sha256};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles as tt;

use crate::common::Env;

const ORIGIN: &str = "tiles.evident.local/aims";

/// A ledger in `dir` with `n` entries and a checkpoint of them.
fn ledger(dir: &Path, n: u64) -> (StateDir, Writer) {
    let state = StateDir::new(dir.join("state"));
    state.init(ORIGIN).unwrap();
    let writer = Writer::open(&state, ORIGIN).unwrap();
    grow(&writer, 0, n);
    (state, writer)
}

/// Appends entries `from..to` (with titles of varied length) and signs a checkpoint.
fn grow(writer: &Writer, from: u64, to: u64) -> String {
    let mut batch = WriteBatch::default();
    for i in from..to {
        let uri = format!("ticket://tiles/{i}");
        let digest = hex(&Sha256::digest(i.to_le_bytes()));
        let title = "x".repeat((i % 97) as usize);
        batch.entries.push(NewEntry::new(
            EntryStatement::new(
                PREDICATE_TYPE,
                &uri,
                &digest,
                Predicate {
                    collected_at: "2026-11-22T10:00:00Z".into(),
                    controls: vec!["A.6.2.6".into()],
                    kind: "ticket".into(),
                    source: "tiles".into(),
                    title: Some(format!("ticket {i} {title}")),
                    uri: Some(uri.clone()),
                    ..Predicate::default()
                },
            ),
            false,
            ArtefactChange::None,
        ));
    }
    writer.append(batch).unwrap();
    writer.checkpoint().unwrap().note
}

fn check(dir: &Path, key: &NoteVerifier, previous: Option<String>) -> TileReport {
    let opts = TileOptions {
        key: key.clone(),
        previous,
        witnesses: (Vec::new(), 0),
    };
    verify_tiles(&Store::Dir(dir.to_owned()), &opts, false).unwrap()
}

fn checks_failed(r: &TileReport) -> Vec<TileCheck> {
    let mut v: Vec<TileCheck> = r.findings.problems.iter().map(|p| p.check).collect();
    v.dedup();
    v
}

/// Cloudflare's port of Go's tile reader over a tile directory: it maps Go's
/// `tile/8/L/N` paths to C2SP's `tile/L/N` and authenticates every tile it reads against
/// the tree hash.
struct TheirTiles(PathBuf);

impl tt::TileReader for TheirTiles {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[tt::Tile]) -> Result<Vec<Vec<u8>>, tt::Error> {
        tiles
            .iter()
            .map(|t| {
                let c2sp = t.path().replacen("tile/8/", "tile/", 1);
                std::fs::read(self.0.join(&c2sp))
                    .map_err(|e| tt::Error::InvalidInput(format!("{c2sp}: {e}")))
            })
            .collect()
    }
    fn save_tiles(&self, _: &[tt::Tile], _: &[Vec<u8>]) {}
}

/// The independent client: opens the checkpoint with `signed_note`, recomputes the tree
/// hash from the tiles, and proves entries (their leaves read from the entry bundles)
/// against it.
fn their_check(dir: &Path, vkey: &str, entries: &[u64]) {
    let note = std::fs::read(dir.join("checkpoint")).unwrap();
    let verifier = StandardVerifier::new(vkey).unwrap();
    let note = Note::from_bytes(&note).unwrap();
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .expect("their verifier accepts the published checkpoint");
    let cp = tt::Checkpoint::from_bytes(note.text()).unwrap();
    let tiles = TheirTiles(dir.to_owned());
    let reader = tt::TileHashReader::new(cp.size(), *cp.hash(), &tiles);
    assert_eq!(tt::tree_hash(cp.size(), &reader).unwrap(), *cp.hash());
    for &i in entries {
        let bundle_tile = tt::Tile::new(
            8,
            0,
            i / 256,
            ((cp.size() - i / 256 * 256).min(256)) as u32,
            false,
        );
        let path = bundle_tile.path().replacen("tile/8/0/", "tile/entries/", 1);
        let bundle = std::fs::read(dir.join(&path)).unwrap();
        // Their own walk over the 16-bit length prefixes.
        let (mut at, mut leaf) = (0usize, &[][..]);
        for _ in 0..=(i % 256) {
            let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
            leaf = &bundle[at + 2..at + 2 + len];
            at += 2 + len;
        }
        let proof = tt::prove_record(cp.size(), i, &reader).unwrap();
        tt::check_record(&proof, cp.size(), *cp.hash(), i, tt::record_hash(leaf))
            .unwrap_or_else(|e| panic!("entry {i}: {e:?}"));
    }
}

#[test]
fn published_tiles_verify_here_and_in_an_independent_client() {
    let tmp = tempfile::tempdir().unwrap();
    // Two full level-0 tiles, a partial one, and a partial level-1 tile.
    let (state, writer) = ledger(tmp.path(), 600);
    let key = state.verifier().unwrap();
    let out = tmp.path().join("pub");
    let store = Store::Dir(out.clone());
    let reader = Reader::open(&state).unwrap();
    let first = publish(&reader, &store, &key, None).unwrap().unwrap();
    assert_eq!((first.from, first.size), (0, 600));
    // 3 level-0 tiles with their entry bundles, 1 level-1 tile.
    assert_eq!(first.objects, 7);
    for p in [
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
    ] {
        assert!(out.join(p).is_file(), "{p} published");
    }
    assert!(out.join("tile/entries/002.p/88").is_file());
    let r = check(&out, &key, None);
    assert!(r.ok(), "{:?}", r.findings.problems);
    assert_eq!((r.entries, r.tiles), (600, 4));
    their_check(&out, &key.key_string(), &[0, 1, 255, 256, 511, 512, 599]);

    // Unchanged: nothing is written.
    let again = publish(&reader, &store, &key, None).unwrap().unwrap();
    assert_eq!(again.objects, 0);

    // Incremental: only the tiles that grew, and the auditor's earlier checkpoint is a
    // prefix of the new tree.
    let kept = std::fs::read_to_string(out.join("checkpoint")).unwrap();
    grow(&writer, 600, 70_000);
    let reader = Reader::open(&state).unwrap();
    let next = publish(&reader, &store, &key, None).unwrap().unwrap();
    assert_eq!(next.from, 600);
    let expected = new_tiles(600, 70_000)
        .iter()
        .map(|t| if t.level == 0 { 2 } else { 1 })
        .sum::<u64>();
    assert_eq!(next.objects, expected);
    assert!(expected < 2 * 274 + 3, "only new and partial tiles");
    let r = check(&out, &key, Some(kept.clone()));
    assert!(r.ok(), "{:?}", r.findings.problems);
    assert_eq!(r.previous, Some(600));
    assert_eq!(r.entries, 70_000);
    their_check(&out, &key.key_string(), &[599, 600, 65_535, 65_536, 69_999]);

    // The CLI says the same, and exits 3 once a tile is wrong.
    let env = Env::new();
    let vkey = tmp.path().join("log.vkey");
    std::fs::write(&vkey, key.key_string()).unwrap();
    let kept_file = tmp.path().join("kept.checkpoint");
    std::fs::write(&kept_file, &kept).unwrap();
    let ok = env.run(&[
        "verify",
        "--tiles",
        out.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
        "--previous-checkpoint",
        kept_file.to_str().unwrap(),
    ]);
    let ok = ok.ok();
    assert!(
        ok.stdout.contains("extends your checkpoint of size 600"),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.contains("OK: the tiles at"), "{}", ok.stdout);
    std::fs::write(out.join("tile/1/000"), [0u8; 8192]).unwrap();
    let bad = env.run(&[
        "verify",
        "--tiles",
        out.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ]);
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("FAIL tiles: tile/1/000"),
        "{}",
        bad.stdout
    );
}

#[test]
fn tiles_are_read_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, key, ..) = published(tmp.path());
    let server = crate::peers::static_files(&out);
    let vkey = tmp.path().join("log.vkey");
    std::fs::write(&vkey, key.key_string()).unwrap();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let env = Env::new();
    let run = env
        .run(&[
            "--format",
            "json",
            "verify",
            "--tiles",
            &url,
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    let j = run.json();
    assert_eq!(j["entries"], 600);
    assert_eq!(j["checkpoint"]["size"], 600);
    assert_eq!(j["problems"], serde_json::json!([]));
    // A missing object over HTTP (a 404) is a finding, not a crash or a pass.
    std::fs::remove_file(out.join("tile/entries/001")).unwrap();
    let bad = env.run(&["verify", "--tiles", &url, "--key", vkey.to_str().unwrap()]);
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("FAIL entry 256: fetching"),
        "{}",
        bad.stdout
    );
    // A server that is not there is an error that names it.
    drop(server);
    let gone = env.run(&["verify", "--tiles", &url, "--key", vkey.to_str().unwrap()]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("127.0.0.1"), "{}", gone.stderr);
}

/// A published log of 600 entries in a fresh directory, with its key.
fn published(tmp: &Path) -> (PathBuf, NoteVerifier, StateDir, Writer) {
    let (state, writer) = ledger(tmp, 600);
    let key = state.verifier().unwrap();
    let out = tmp.join("pub");
    publish(
        &Reader::open(&state).unwrap(),
        &Store::Dir(out.clone()),
        &key,
        None,
    )
    .unwrap();
    (out, key, state, writer)
}

/// A publication that fails half way (a path it must write is blocked) leaves the old
/// checkpoint in place, and every tile that checkpoint needs: readers never see a checkpoint
/// whose tiles are missing. The next publication completes it.
#[test]
fn an_interrupted_publication_leaves_the_old_checkpoint_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, key, state, writer) = published(tmp.path());
    let kept = std::fs::read_to_string(out.join("checkpoint")).unwrap();
    grow(&writer, 600, 800);
    // Growing to 800 completes tile 002 and starts 003.p/32: a file where the directory
    // 003.p must go stops the publication after it has written some of the new tiles.
    let blocker = out.join("tile/0/003.p");
    std::fs::write(&blocker, b"in the way").unwrap();
    let reader = Reader::open(&state).unwrap();
    let store = Store::Dir(out.clone());
    assert!(publish(&reader, &store, &key, None).is_err());
    assert!(out.join("tile/0/002").is_file(), "it failed part way");
    assert_eq!(
        std::fs::read_to_string(out.join("checkpoint")).unwrap(),
        kept,
        "the checkpoint still names the old tree"
    );
    let r = check(&out, &key, None);
    assert!(r.ok(), "{:?}", r.findings.problems);
    assert_eq!(r.entries, 600);
    // Unblocked, the next publication finishes: the new checkpoint extends the old.
    std::fs::remove_file(&blocker).unwrap();
    let done = publish(&reader, &store, &key, None).unwrap().unwrap();
    assert_eq!((done.from, done.size), (600, 800));
    let r = check(&out, &key, Some(kept));
    assert!(r.ok(), "{:?}", r.findings.problems);
    assert_eq!((r.previous, r.entries), (Some(600), 800));
}

#[test]
fn tampered_tiles_are_named() {
    type Attack = fn(&Path);
    let attacks: &[(&str, Attack, &[TileCheck])] = &[
        (
            "a flipped byte in a leaf",
            |d| flip(&d.join("tile/entries/001"), 40),
            &[TileCheck::Entries, TileCheck::Tiles, TileCheck::Tree],
        ),
        (
            "a flipped byte in a hash tile",
            |d| flip(&d.join("tile/0/000"), 100),
            &[TileCheck::Tiles],
        ),
        (
            "an entry bundle truncated",
            |d| truncate(&d.join("tile/entries/000"), 1),
            &[TileCheck::Entries, TileCheck::Tree],
        ),
        (
            "an entry bundle deleted",
            |d| std::fs::remove_file(d.join("tile/entries/002.p/88")).unwrap(),
            &[TileCheck::Entries, TileCheck::Tree],
        ),
        (
            "a hash tile deleted",
            |d| std::fs::remove_file(d.join("tile/1/000.p/2")).unwrap(),
            &[TileCheck::Tiles],
        ),
        (
            "two entries swapped",
            swap_first_two,
            &[TileCheck::Tiles, TileCheck::Tree],
        ),
        (
            "the checkpoint's size changed",
            |d| {
                let p = d.join("checkpoint");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\n600\n", "\n599\n", 1);
                std::fs::write(p, t).unwrap();
            },
            &[TileCheck::Checkpoint],
        ),
        (
            "the checkpoint deleted",
            |d| std::fs::remove_file(d.join("checkpoint")).unwrap(),
            &[TileCheck::Checkpoint],
        ),
    ];
    for (what, attack, expect) in attacks {
        let tmp = tempfile::tempdir().unwrap();
        let (out, key, ..) = published(tmp.path());
        attack(&out);
        let r = check(&out, &key, None);
        assert_eq!(
            &checks_failed(&r),
            expect,
            "{what}: {:?}",
            r.findings.problems
        );
    }
}

fn flip(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    b[at] ^= 1;
    std::fs::write(p, b).unwrap();
}

fn truncate(p: &Path, by: usize) {
    let b = std::fs::read(p).unwrap();
    std::fs::write(p, &b[..b.len() - by]).unwrap();
}

/// Entries 0 and 1 exchanged in the first bundle (each still a valid statement).
fn swap_first_two(d: &Path) {
    let p = d.join("tile/entries/000");
    let b = std::fs::read(&p).unwrap();
    let leaves = evident::tiles::layout::split_entries(&b, 256).unwrap();
    let mut out = Vec::new();
    let mut order: Vec<&[u8]> = leaves.clone();
    order.swap(0, 1);
    for l in order {
        evident::tiles::layout::push_entry(&mut out, l).unwrap();
    }
    std::fs::write(p, out).unwrap();
}

#[test]
fn another_history_is_refused_by_the_publisher_and_caught_by_the_auditor() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, key, state, _writer) = published(tmp.path());
    let kept = std::fs::read_to_string(out.join("checkpoint")).unwrap();

    // A second ledger under the same origin and key (a restored key, a cloned state
    // directory) that diverged: its tree of size 600 is another.
    let other = tmp.path().join("fork");
    std::fs::create_dir_all(other.join("state")).unwrap();
    for f in ["signing.key", "verifier.vkey"] {
        let _ = std::fs::copy(state.dir().join(f), other.join("state").join(f));
    }
    let fork_state = StateDir::new(other.join("state"));
    fork_state.open_or_init(ORIGIN).unwrap();
    let fork = Writer::open(&fork_state, ORIGIN).unwrap();
    // Entry 0 left out: every later position holds another leaf.
    grow(&fork, 1, 701);
    assert_eq!(
        fork_state.verifier().unwrap().key_string(),
        key.key_string()
    );
    let e = publish(
        &Reader::open(&fork_state).unwrap(),
        &Store::Dir(out.clone()),
        &key,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("two histories"), "{e}");

    // Published elsewhere, the fork verifies on its own, but not against the kept checkpoint.
    let fork_out = tmp.path().join("fork-pub");
    publish(
        &Reader::open(&fork_state).unwrap(),
        &Store::Dir(fork_out.clone()),
        &key,
        None,
    )
    .unwrap();
    assert!(check(&fork_out, &key, None).ok());
    let r = check(&fork_out, &key, Some(kept));
    assert_eq!(
        checks_failed(&r),
        vec![TileCheck::Previous],
        "{:?}",
        r.findings.problems
    );

    // A log of another key is refused, and so is a rollback below what was published.
    let stranger = tmp.path().join("stranger");
    let (s2, _w2) = ledger(&stranger, 3);
    let e = publish(
        &Reader::open(&s2).unwrap(),
        &Store::Dir(out.clone()),
        &s2.verifier().unwrap(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not this log's"), "{e}");
    let r = check(&out, &s2.verifier().unwrap(), None);
    assert_eq!(checks_failed(&r), vec![TileCheck::Checkpoint]);
    let small = tmp.path().join("small");
    std::fs::create_dir_all(small.join("state")).unwrap();
    for f in ["signing.key", "verifier.vkey"] {
        let _ = std::fs::copy(state.dir().join(f), small.join("state").join(f));
    }
    let small_state = StateDir::new(small.join("state"));
    small_state.open_or_init(ORIGIN).unwrap();
    grow(&Writer::open(&small_state, ORIGIN).unwrap(), 0, 10);
    let e = publish(
        &Reader::open(&small_state).unwrap(),
        &Store::Dir(out),
        &key,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("behind what was published"), "{e}");
}

/// `[publish] url = "s3://…"`: the tiles go to a real S3 server (moto) with signed PUTs,
/// incrementally, and `verify --tiles` reads them back over plain HTTP from the bucket.
#[test]
fn tiles_are_published_to_a_bucket() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    let p = srv.port;
    // Served to anyone, as a log's tiles are: a bucket policy allowing anonymous reads.
    crate::peers::boto3(
        p,
        "import json\n\
         s3.create_bucket(Bucket='evident-log')\n\
         s3.put_bucket_policy(Bucket='evident-log', Policy=json.dumps({'Version': '2012-10-17', \
         'Statement': [{'Effect': 'Allow', 'Principal': '*', 'Action': 's3:GetObject', \
         'Resource': 'arn:aws:s3:::evident-log/*'}]}))",
    );
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + &format!(
            "\n[publish]\nurl = \"s3://evident-log/aims/log\"\nendpoint = \"http://127.0.0.1:{p}\"\n\
             access_key_id = \"AKIDTEST\"\nsecret_env = \"EVIDENT_TEST_PUBLISH_SECRET\"\n"
        );
    std::fs::write(env.config(), cfg).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.env("EVIDENT_TEST_PUBLISH_SECRET", "test-secret-key");
        env.run_with(cmd, args)
    };
    run(&["init"]).ok();
    run(&["collect"]).ok();
    let first = run(&["--format", "json", "checkpoint"]).ok().json();
    let size = first["size"].as_u64().unwrap();
    assert_eq!(first["published"]["size"], size, "{first}");
    let vkey = env.state().join("verifier.vkey");
    let url = format!("http://127.0.0.1:{p}/evident-log/aims/log/");
    let verify = || {
        env.run(&[
            "--format",
            "json",
            "verify",
            "--tiles",
            &url,
            "--key",
            vkey.to_str().unwrap(),
        ])
    };
    let v = verify().ok().json();
    assert_eq!(v["checkpoint"]["size"], size, "{v}");
    // Incremental: only what grew.
    std::fs::write(env.docs().join("later.md"), "# Later\n").unwrap();
    run(&["collect"]).ok();
    let second = run(&["--format", "json", "checkpoint"]).ok().json();
    assert_eq!(second["published"]["from"], size, "{second}");
    assert_eq!(
        second["published"]["objects"], 2,
        "one level-0 tile and its bundle"
    );
    assert_eq!(verify().ok().json()["checkpoint"]["size"], second["size"]);
    // The keys are where C2SP puts them, under the prefix.
    crate::peers::boto3(
        p,
        "keys = sorted(o['Key'] for o in s3.list_objects_v2(Bucket='evident-log')['Contents'])\n\
         assert 'aims/log/checkpoint' in keys, keys\n\
         assert any(k.startswith('aims/log/tile/entries/000.p/') for k in keys), keys\n\
         body = s3.get_object(Bucket='evident-log', Key='aims/log/checkpoint')\n\
         assert body['ContentType'].startswith('text/plain'), body['ContentType']",
    );
    // Without the secret, publication says which variable to set, and never prints a key.
    let e = env.run(&["publish"]);
    assert_eq!(e.code, 1, "{}{}", e.stdout, e.stderr);
    assert!(
        e.stderr.contains("$EVIDENT_TEST_PUBLISH_SECRET"),
        "{}",
        e.stderr
    );
}
