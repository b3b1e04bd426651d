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

/// Issue 12, item 1: front matter is YAML. A table of YAML forms, each recorded and compared
/// with what PyYAML (a reference parser) reads from the same block; broken front matter is a
/// warning and the file is still recorded.
#[test]
fn front_matter_is_read_as_yaml_like_a_reference_parser() {
    let env = crate::common::Env::new();
    let dir = env.docs().join("yaml");
    std::fs::create_dir_all(&dir).unwrap();
    let forms: [(&str, &str); 11] = [
        ("plain", "title: AI Policy\ncontrols: A.2.2\n"),
        (
            "double",
            "title: \"A \\\"quoted\\\" word\\tand \\u00e9\"\ncontrols: [A.2.2]\n",
        ),
        ("single", "title: 'It''s here'\ncontrols: [A.2.2]\n"),
        (
            "folded",
            "title: >-\n  Folded\n  title\ncontrols: [A.2.2]\n",
        ),
        (
            "literal",
            "title: |-\n  Line one\n  line two\ncontrols: [A.2.2]\n",
        ),
        (
            "flow",
            "title: Flow\ncontrols: [A.2.2, \"A.2.4\", 'A.2.3']\n",
        ),
        (
            "block",
            "title: Block\ncontrols:\n  - A.2.2\n  - 'A.5.4' # fairness\n",
        ),
        (
            "dates",
            "title: Dated\neffective_date: 2026-01-15\ncontrols: [A.2.2]\n",
        ),
        (
            "quoted-date",
            "title: Q\neffective_date: \"2026-02-01\"\ncontrols: [A.2.2]\n",
        ),
        (
            "comment",
            "title: With a comment # not part of it\ncontrols: [A.2.2]\n",
        ),
        ("number", "title: 2026\ncontrols: [A.2.2]\n"),
    ];
    for (name, block) in &forms {
        std::fs::write(
            dir.join(format!("{name}.md")),
            format!("---\n{block}---\n# Heading {name}\n"),
        )
        .unwrap();
    }
    // BOM and CRLF line ends around the same YAML.
    std::fs::write(
        dir.join("bom-crlf.md"),
        "\u{feff}---\r\ntitle: \"CRLF \\u00e9\"\r\ncontrols:\r\n  - A.2.2\r\n---\r\n# H\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.md"),
        "---\ntitle: [unclosed\ncontrols: A.2.2\n---\n# Broken but kept\n",
    )
    .unwrap();
    env.run(&["init"]).ok();
    let r = env.run(&["collect"]);
    assert!(
        r.stderr
            .contains("broken.md: front matter is not valid YAML"),
        "{}",
        r.stderr
    );
    let q = env.run(&["query", "A.2", "--format", "json"]).ok().json();
    let recorded = |name: &str| {
        q.as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["uri"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("yaml/{name}.md"))
            })
            .unwrap_or_else(|| panic!("{name} not recorded: {q}"))
            .clone()
    };
    // The reference: PyYAML's safe_load of each block.
    let mut blocks: Vec<(String, String)> = forms
        .iter()
        .map(|(n, b)| ((*n).to_owned(), (*b).to_owned()))
        .collect();
    blocks.push((
        "bom-crlf".into(),
        "title: \"CRLF \\u00e9\"\r\ncontrols:\r\n  - A.2.2\r\n".into(),
    ));
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml\n\
             out={}\n\
             for name,block in json.load(sys.stdin):\n\
             \x20   d=yaml.safe_load(block)\n\
             \x20   c=d.get('controls'); c=c if isinstance(c,list) else [x.strip() for x in str(c).split(',')]\n\
             \x20   e=d.get('effective_date')\n\
             \x20   out[name]={'title':str(d['title']).strip(),'controls':[str(x) for x in c],'effective':None if e is None else str(e)}\n\
             print(json.dumps(out))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        o.stdin
            .as_ref()
            .unwrap()
            .write_all(serde_json::to_string(&blocks).unwrap().as_bytes())
            .unwrap();
    }
    let out = o.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with PyYAML is needed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, _) in &blocks {
        let got = recorded(name);
        let w = &want[name.as_str()];
        assert_eq!(got["title"], w["title"], "{name}: {got}");
        let controls: Vec<String> = got["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let mut expect: Vec<String> = w["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        // The ledger lists controls in catalogue order, with path-word defaults added.
        expect.retain(|c| !controls.contains(c));
        assert!(expect.is_empty(), "{name}: {controls:?} lacks {expect:?}");
        assert_eq!(got["effective_date"], w["effective"], "{name}: {got}");
    }
    // Broken front matter: still recorded, under its heading.
    let b = q
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uri"].as_str().unwrap().ends_with("broken.md"));
    assert!(
        b.is_none(),
        "its controls were not read, so it is not A.2 evidence"
    );
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let title: String = db
        .query_row(
            "SELECT title FROM entries WHERE uri LIKE '%yaml/broken.md'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(title, "Broken but kept");
}
