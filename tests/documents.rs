//! Document-store collectors against real servers: WsgiDAV (WebDAV).

use crate::collectors::{collect, entries, env_with};
use crate::peers::{self, dav};

/// Percent-encodes a path for a request line (keeps `/`).
fn enc(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'/' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b if b.is_ascii_alphanumeric() => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn webdav_walks_downloads_changes_and_removals() {
    let Some(srv) = peers::wsgidav("dav", "davpw-secret") else {
        return;
    };
    let p = srv.port;
    let auth = "dav:davpw-secret";
    for d in [
        "/aims",
        "/aims/policies",
        "/aims/cards",
        "/aims/R&D ünïcode",
    ] {
        assert_eq!(dav(p, auth, "MKCOL", &enc(d), b""), 201, "{d}");
    }
    let files: [(&str, &[u8]); 4] = [
        (
            "/aims/policies/ai-policy.md",
            b"---\ncontrols: [A.2.3]\n---\n# AI policy\n",
        ),
        ("/aims/cards/model card fraud.md", b"# Model card: fraud\n"),
        (
            "/aims/R&D ünïcode/notes & minutes.txt",
            b"internal audit notes",
        ),
        ("/aims/readme.txt", b"hello"),
    ];
    for (f, body) in files {
        assert_eq!(dav(p, auth, "PUT", &enc(f), body), 201, "{f}");
    }
    let env = env_with(&format!(
        "[[collectors]]\nname = \"dav\"\nkind = \"webdav\"\nurl = \"http://127.0.0.1:{p}/aims/\"\nuser = \"dav\"\ntoken_file = \"dav-password\"\nexclude = [\"readme.txt\"]\n"
    ));
    std::fs::write(env.path().join("dav-password"), "davpw-secret\n").unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 3, "{s}");
    let e = entries(&env, "document");
    let controls = |end: &str| {
        e.iter()
            .find(|(u, _)| u.ends_with(end))
            .unwrap_or_else(|| panic!("{end}: {e:?}"))
            .1
            .clone()
    };
    assert_eq!(
        controls("policies/ai-policy.md"),
        "A.2.2,A.2.3",
        "path word + front matter"
    );
    assert_eq!(controls("cards/model%20card%20fraud.md"), "A.6.2.7");
    assert!(
        e.iter()
            .any(|(u, _)| u.ends_with("R%26D%20%C3%BCn%C3%AFcode/notes%20%26%20minutes.txt")),
        "{e:?}"
    );
    // The content is the file's, byte for byte: the recorded digest and the stored blob
    // are the uploaded bytes'.
    let out = env.run(&["--format", "json", "query", "A.6.2.7"]).ok();
    assert!(out.stdout.contains("model card fraud.md"), "{}", out.stdout);
    for (f, body) in &files[..3] {
        let end = enc(f.strip_prefix("/aims/").unwrap());
        assert_stored(&env, &end, body);
    }

    // Unchanged: only PROPFINDs (4 folders), no download.
    let (_, s) = collect(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(4)),
        "{s}"
    );

    // One change, one removal: exactly two entries.
    assert_eq!(
        dav(
            p,
            auth,
            "PUT",
            &enc("/aims/cards/model card fraud.md"),
            b"# Model card: fraud v2\n"
        ),
        204
    );
    assert_eq!(
        dav(
            p,
            auth,
            "DELETE",
            &enc("/aims/R&D ünïcode/notes & minutes.txt"),
            b""
        ),
        204
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["removed"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(entries(&env, "document_removed").len(), 1);

    // A wrong password: 401, fatal, named, never shown.
    std::fs::write(env.path().join("dav-password"), "wrong-pass-123").unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 1);
    let msg = s["error"].as_str().unwrap();
    assert!(
        msg.contains("401") && msg.contains("dav-password (token_file)"),
        "{msg}"
    );
    assert!(!r.stderr.contains("wrong-pass-123") && !r.stdout.contains("wrong-pass-123"));
    env.run(&["verify"]).ok();
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn s3_lists_pages_downloads_versions_and_removals() {
    let Some(srv) = peers::moto() else { return };
    let p = srv.port;
    peers::boto3(
        p,
        r#"s3.create_bucket(Bucket='aims')
s3.put_bucket_versioning(Bucket='aims', VersioningConfiguration={'Status': 'Enabled'})
s3.put_object(Bucket='aims', Key='evidence/policies/ai-policy.md', Body=b'# AI policy\n', ContentType='text/markdown')
s3.put_object(Bucket='aims', Key='evidence/impact assessments/fraud AIA ü.pdf', Body=b'%PDF-1.4 fraud', ContentType='application/pdf')
s3.put_object(Bucket='aims', Key='evidence/../escape/../../x.txt', Body=b'dots')
s3.put_object(Bucket='aims', Key='evidence/big/model.bin', Body=b'x' * 3000)
s3.put_object(Bucket='aims', Key='other/ignored.txt', Body=b'not under the prefix')
for i in range(1005):
    s3.put_object(Bucket='aims', Key='evidence/logs/run-%04d.json' % i, Body=b'{"run": %d}' % i, ContentType='application/json')
"#,
    );
    let env = env_with(&format!(
        "[[collectors]]\nname = \"bucket\"\nkind = \"s3\"\nbucket = \"aims\"\nprefix = \"evidence/\"\nendpoint = \"http://127.0.0.1:{p}\"\naccess_key_id = \"AKIDTEST\"\ntoken_env = \"EVIDENT_TEST_S3\"\nmax_file_size = \"2KiB\"\n"
    ));
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.env("EVIDENT_TEST_S3", "test-secret-key");
        let mut a = vec!["--format", "json", "collect"];
        a.extend_from_slice(args);
        let r = env.run_with(cmd, &a);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
        (r, v["collectors"][0].clone())
    };
    let (r, s) = run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every object under the prefix, the one with `..` segments too (issue 12, item 7).
    assert_eq!(s["new"], 1009, "{s}");
    // 1,009 objects under the prefix: two listing pages, one GET each but for the big one
    // and the one with `..` segments.
    assert_eq!(s["requests"], 2 + 1007, "{s}");
    let docs = entries(&env, "document");
    let c = |end: &str| {
        docs.iter()
            .find(|(u, _)| u.ends_with(end))
            .unwrap_or_else(|| panic!("no entry ends with {end}"))
            .1
            .clone()
    };
    assert_eq!(c("evidence/policies/ai-policy.md"), "A.2.2");
    // Downloads are the uploaded bytes, digest and blob.
    assert_stored(&env, "evidence/policies/ai-policy.md", b"# AI policy\n");
    assert_stored(
        &env,
        "impact%20assessments/fraud%20AIA%20%C3%BC.pdf",
        b"%PDF-1.4 fraud",
    );
    assert_stored(&env, "evidence/logs/run-0042.json", b"{\"run\": 42}");
    assert_eq!(
        c("impact%20assessments/fraud%20AIA%20%C3%BC.pdf"),
        "A.5.3,A.5.4"
    );
    assert!(
        r.stderr.contains(
            "s3://aims/evidence/%2E%2E/escape/%2E%2E/%2E%2E/x.txt: the key has '.' or '..' segments, which no URL can name exactly; recorded from the listing (metadata only)"
        ),
        "{}",
        r.stderr
    );
    assert!(!docs.iter().any(|(u, _)| u.contains("other/")));
    let meta = entries(&env, "document_metadata");
    assert_eq!(
        meta.len(),
        2,
        "the 3,000-byte object is above max_file_size; the `..` key cannot be fetched: {meta:?}"
    );
    let dots =
        crate::collectors::content(&env, "s3://aims/evidence/%2E%2E/escape/%2E%2E/%2E%2E/x.txt");
    assert_eq!(
        dots["object"]["key"], "evidence/../escape/../../x.txt",
        "{dots}"
    );
    assert!(
        dots["not_fetched"].as_str().unwrap().contains("'..'"),
        "{dots}"
    );
    assert!(!r.stderr.contains("error"), "{}", r.stderr);
    let titles = env.run(&["--format", "json", "query", "A.2.2"]).ok().stdout;
    assert!(titles.contains("ai-policy.md (version "), "{titles}");

    // Unchanged: the two listing pages only.
    let (_, s) = run(&[]);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    // One change, three removals: exactly four entries, the removals in URI order.
    peers::boto3(
        p,
        "s3.put_object(Bucket='aims', Key='evidence/policies/ai-policy.md', Body=b'# AI policy v2\\n')\nfor k in ['0907', '0007', '0500']: s3.delete_object(Bucket='aims', Key='evidence/logs/run-%s.json' % k)",
    );
    let (_, s) = run(&[]);
    assert_eq!(
        (s["new"].as_u64(), s["removed"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );
    let removed: Vec<String> = entries(&env, "document_removed")
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    let mut sorted = removed.clone();
    sorted.sort();
    assert_eq!(removed, sorted, "removals are appended in URI order");

    // moto accepts any signature, so credentials are checked where they can be: a missing
    // secret is named, and a missing bucket is the server's own message.
    let r = env.run(&["--format", "json", "collect"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("EVIDENT_TEST_S3 (token_env) is not set"),
        "{}",
        r.stderr
    );
    std::fs::write(
        env.config(),
        std::fs::read_to_string(env.config())
            .unwrap()
            .replace("bucket = \"aims\"", "bucket = \"nope\""),
    )
    .unwrap();
    let (r, s) = run(&[]);
    assert_eq!(r.code, 1);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 404 Not Found: NoSuchBucket: The specified bucket does not exist"),
        "{s}"
    );
    env.run(&["verify"]).ok();
}

#[test]
fn sidecars_map_files_without_front_matter_and_edits_remap() {
    let env = env_with("[[collectors]]\nname = \"docs\"\nkind = \"filesystem\"\nroot = \"docs\"\n");
    let docs = env.docs();
    std::fs::write(docs.join("scan-0042.pdf"), b"%PDF-1.4 signed minutes").unwrap();
    std::fs::write(
        docs.join("scan-0042.pdf.evident.toml"),
        "controls = [\"9.3\"]\ntitle = \"Management review minutes, Q3\"\neffective_date = 2026-10-14\n",
    )
    .unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        s["new"], 6,
        "five documents and the PDF, not its sidecar: {s}"
    );
    let db = || rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (String, String, Option<String>, i64) {
        db.query_row(
            "SELECT title, controls, effective_date, (SELECT COUNT(*) FROM entries WHERE uri LIKE '%scan-0042.pdf') FROM entries WHERE uri LIKE '%scan-0042.pdf' ORDER BY idx DESC",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    assert_eq!(
        row(&db()),
        (
            "Management review minutes, Q3".into(),
            "9.3".into(),
            Some("2026-10-14".into()),
            1
        )
    );
    assert!(
        !entries(&env, "document")
            .iter()
            .any(|(u, _)| u.ends_with(".evident.toml"))
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 0, "{s}");
    // Only the sidecar changes: the same digest, re-mapped, is a new entry.
    std::fs::write(
        docs.join("scan-0042.pdf.evident.toml"),
        "controls = [\"9.3\", \"A.2.4\"]\n",
    )
    .unwrap();
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 1, "{s}");
    let (_, controls, _, n) = row(&db());
    assert_eq!((controls.as_str(), n), ("A.2.4,9.3", 2));
    // A broken sidecar is a warning; the document keeps being collected.
    std::fs::write(docs.join("scan-0042.pdf.evident.toml"), "controls = [").unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("invalid sidecar"), "{}", r.stderr);
    assert_eq!(s["new"], 1, "re-mapped without the sidecar's controls: {s}");
    env.run(&["verify"]).ok();
}

/// Asserts that the newest entry whose URI ends with `end` records the SHA-256 of `body`
/// and that its blob holds exactly `body`.
#[track_caller]
fn assert_stored(env: &crate::common::Env, end: &str, body: &[u8]) {
    use sha2::{Digest, Sha256};
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let got: String = db
        .query_row(
            "SELECT lower(hex(sha256)) FROM entries WHERE uri LIKE '%' || ?1 ORDER BY idx DESC LIMIT 1",
            [end],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no entry ends with {end}: {e}"));
    let want = evident::ledger::leaf::hex(Sha256::digest(body).as_slice());
    assert_eq!(
        got, want,
        "{end}: recorded digest is not the uploaded bytes'"
    );
    let blob = env
        .state()
        .join("blobs/sha256")
        .join(&want[..2])
        .join(&want);
    assert_eq!(std::fs::read(&blob).unwrap(), body, "{end}: blob content");
}
