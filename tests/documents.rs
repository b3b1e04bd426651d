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
    // The content is the file's, byte for byte.
    let out = env.run(&["--format", "json", "query", "A.6.2.7"]).ok();
    assert!(out.stdout.contains("model card fraud.md"), "{}", out.stdout);

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
