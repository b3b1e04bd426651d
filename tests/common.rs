//! Test helpers: a temporary workspace with a config, sample documents and the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// A temporary directory with `evident.toml`, a `docs/` folder and a `state/` ledger.
pub struct Env {
    pub dir: tempfile::TempDir,
}

pub const CONFIG: &str = r#"
[ledger]
path = "state"
origin = "test.evident.local/aims"

[[collectors]]
name = "docs"
kind = "filesystem"
root = "docs"
exclude = ["**/.git/**"]
schedule = "*/15 * * * *"

[[rules]]
match = { collector = "docs", path = "impact/**" }
controls = ["A.5.3"]
"#;

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("evident.toml"), CONFIG).unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir_all(docs.join("impact")).unwrap();
        std::fs::write(docs.join("policy.md"), "---\ncontrols: [A.2.2]\ntitle: AI Policy\neffective_date: 2026-01-15\n---\n# AI Policy\n").unwrap();
        std::fs::write(
            docs.join("review.md"),
            "---\ncontrols:\n  - A.2.4\n---\n# Policy review\n",
        )
        .unwrap();
        std::fs::write(
            docs.join("impact/fraud.md"),
            "# Fraud model impact assessment\n",
        )
        .unwrap();
        std::fs::write(
            docs.join("card.md"),
            "---\ncontrols: [A.6.2.7]\n---\n# Model card\n",
        )
        .unwrap();
        std::fs::write(docs.join("minutes.txt"), "no front matter here").unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn docs(&self) -> PathBuf {
        self.dir.path().join("docs")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("evident.toml")
    }

    /// Runs `evident --config <env config> args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(Command::new(bin()), args)
    }

    /// Runs with a prepared command (to wrap it, e.g. in setpriv).
    pub fn run_with(&self, mut cmd: Command, args: &[&str]) -> Run {
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("EVIDENT_CONFIG")
            .env_remove("EVIDENT_STATE_DIR");
        Run::from(cmd.output().unwrap())
    }

    /// init + collect + checkpoint.
    pub fn ready() -> Env {
        let env = Env::new();
        env.run(&["init"]).ok();
        env.run(&["collect"]).ok();
        env.run(&["checkpoint"]).ok();
        env
    }

    /// A raw connection for tampering, with the append-only triggers dropped.
    pub fn tamper_db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.state().join("evident.db")).unwrap();
        for t in [
            "entries",
            "tree_hashes",
            "checkpoints",
            "evidence",
            "timestamps",
            "superseded",
        ] {
            c.execute_batch(&format!(
                "DROP TRIGGER IF EXISTS {t}_no_update; DROP TRIGGER IF EXISTS {t}_no_delete;"
            ))
            .unwrap();
        }
        // v2 leaves' erasable title and URI are guarded by their own trigger.
        c.execute_batch("DROP TRIGGER IF EXISTS entries_erase_metadata_only;")
            .unwrap();
        c
    }
}

/// Asserts that a `verify` run failed verification (exit 3) and named `needle`.
#[track_caller]
pub fn fails_with(run: Run, needle: &str) {
    assert_eq!(
        run.code, 3,
        "verify should fail\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains(needle),
        "expected {needle:?} in:\n{}",
        run.stdout
    );
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_evident")
}

/// Every file of the ledger's state that could hold a leaked string, read as raw bytes:
/// the database with its WAL and shared memory, and every blob (never `read_to_string`,
/// which yields nothing for a binary file).
pub fn state_bytes(state: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for f in ["evident.db", "evident.db-wal", "evident.db-shm"] {
        if let Ok(b) = std::fs::read(state.join(f)) {
            out.push((state.join(f), b));
        }
    }
    let mut stack = vec![state.join("blobs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(
        out.iter().any(|(p, _)| p.ends_with("evident.db")),
        "no database in {}",
        state.display()
    );
    out
}

/// Asserts that none of `needles` occurs in `hay` (named `what` in the message).
#[track_caller]
pub fn assert_absent(what: &str, hay: &[u8], needles: &[Vec<u8>]) {
    for n in needles {
        assert!(
            !hay.windows(n.len()).any(|w| w == n.as_slice()),
            "{what} holds {:?}",
            String::from_utf8_lossy(n)
        );
    }
}

/// `evident verify BUNDLE --key <env's verifier key> extra…`: the auditor's offline check.
pub fn verify_bundle(env: &Env, bundle: &Path, extra: &[&str]) -> Run {
    let key = env.state().join("verifier.vkey");
    let mut args = vec![
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// A private CA and a server certificate for 127.0.0.1 signed by it, made with stock
/// openssl in `dir`: `ca.pem`, `server.pem`, `server.key` (returned in that order).
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    ] {
        let o = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Every file below `dir` (none when it does not exist).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Lowercase hex SHA-256, as blob names and `SHA256SUMS` write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
