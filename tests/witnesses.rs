//! Witnesses as separate processes (`evident witness serve`) and a daemon that asks them:
//! cosignatures stored, published with the tiles and carried in bundles; a quorum miss that
//! keeps the checkpoint and publishes it once witnessed; a fork refused and kept as
//! evidence; and the cosignatures checked by an independent implementation of the specs.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{Env, bin};
use crate::daemon::{Daemon, every_second, wait_for};
use crate::peers::free_port;

/// A witness process, killed when dropped.
struct Witness {
    child: Option<Child>,
    dir: PathBuf,
    vkey: PathBuf,
    port: u16,
    log_vkey: PathBuf,
}

impl Witness {
    fn init(root: &Path, name: &str, log_vkey: &Path) -> Witness {
        let dir = root.join(name.replace('/', "_"));
        let o = Command::new(bin())
            .args(["witness", "init", "--dir"])
            .arg(&dir)
            .args(["--name", name])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let vkey = dir.join("witness.vkey");
        assert_eq!(
            std::fs::read_to_string(&vkey).unwrap(),
            String::from_utf8_lossy(&o.stdout)
        );
        let mut w = Witness {
            child: None,
            dir,
            vkey,
            port: free_port(),
            log_vkey: log_vkey.to_owned(),
        };
        w.start();
        w
    }

    fn start(&mut self) {
        let child = Command::new(bin())
            .args(["witness", "serve", "--dir"])
            .arg(&self.dir)
            .arg("--log")
            .arg(&self.log_vkey)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        assert!(wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn logs(&self) -> serde_json::Value {
        let o = Command::new(bin())
            .args(["--format", "json", "witness", "logs", "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop();
    }
}

fn witness_table(w: &Witness) -> String {
    format!(
        "\n[[witnesses]]\nurl = \"{}\"\nvkey = \"{}\"\n",
        w.url(),
        std::fs::read_to_string(&w.vkey).unwrap().trim()
    )
}

/// `verify --tiles` with both witnesses; the checkpoint size it verified.
fn verify_tiles(env: &Env, tiles: &Path, witnesses: &[&Witness]) -> Result<u64, String> {
    verify_tiles_with(env, tiles, witnesses, &[])
}

/// [`verify_tiles`] with `extra` arguments.
fn verify_tiles_with(
    env: &Env,
    tiles: &Path,
    witnesses: &[&Witness],
    extra: &[&str],
) -> Result<u64, String> {
    let vkey = env.state().join("verifier.vkey");
    let mut args = vec![
        "--format".to_owned(),
        "json".into(),
        "verify".into(),
        "--tiles".into(),
        tiles.display().to_string(),
        "--key".into(),
        vkey.display().to_string(),
    ];
    for w in witnesses {
        args.push("--witness".into());
        args.push(w.vkey.display().to_string());
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = env.run(&args);
    if r.code != 0 {
        return Err(format!("{}{}", r.stdout, r.stderr));
    }
    Ok(r.json()["checkpoint"]["size"].as_u64().unwrap())
}

/// A Python interpreter with pyca/cryptography: MLflow's peer venv has it.
fn python_with_cryptography() -> Option<PathBuf> {
    let venv = crate::peers::peers_dir().join("mlflow/bin/python");
    for py in [venv, PathBuf::from("python3")] {
        let ok = Command::new(&py)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI installs MLflow's venv, which has pyca/cryptography (scripts/peers.sh)"
    );
    None
}

#[test]
fn two_witnesses_a_quorum_miss_and_a_fork() {
    let env = Env::new();
    every_second(&env);
    env.run(&["init"]).ok();
    let log_vkey = env.state().join("verifier.vkey");
    let root = tempfile::tempdir().unwrap();
    let w1 = Witness::init(root.path(), "witness.example/w1", &log_vkey);
    let mut w2 = Witness::init(root.path(), "audit.example/w2", &log_vkey);
    let tiles = env.path().join("www/log");
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + &witness_table(&w1)
        + &witness_table(&w2)
        + &format!("\n[publish]\nurl = \"file://{}\"\n", tiles.display());
    std::fs::write(env.config(), &cfg).unwrap();

    // The CLI: collect, then a checkpoint both witnesses cosign before it is published.
    env.run(&["collect"]).ok();
    let cp = env.run(&["--format", "json", "checkpoint"]).ok().json();
    assert_eq!(cp["cosignatures"], 2, "{cp}");
    let first = cp["size"].as_u64().unwrap();
    assert_eq!(verify_tiles(&env, &tiles, &[&w1, &w2]), Ok(first));
    assert_eq!(w1.logs()["logs"][0]["size"], first);
    // A fork starts here: a copy of the ledger, key and all.
    let fork = Env::new();
    copy_dir(&env.state(), &fork.state());
    std::fs::write(fork.config(), cfg.replace("www/log", "www/fork")).unwrap();

    // The daemon: a new document is cosigned by both and published.
    let daemon = Daemon::start(&env, false);
    std::fs::write(env.docs().join("later.md"), "# Later\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(40), || verify_tiles(
            &env,
            &tiles,
            &[&w1, &w2]
        )
        .is_ok_and(|s| s > first)),
        "{}",
        daemon.log()
    );
    let second = verify_tiles(&env, &tiles, &[&w1, &w2]).unwrap();

    // The independent check of the published checkpoint's three signatures.
    if let Some(py) = python_with_cryptography() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cosig_check.py");
        let o = Command::new(py)
            .arg(script)
            .arg(tiles.join("checkpoint"))
            .arg(&log_vkey)
            .arg(&w1.vkey)
            .arg(&w2.vkey)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(out.matches("cosigned at").count(), 2, "{out}");
        assert!(out.contains("test.evident.local/aims: signed"), "{out}");
    }

    // A quorum miss: w2 is down. The checkpoint is signed and kept; the published log
    // stays where both witnesses saw it.
    w2.stop();
    std::fs::write(env.docs().join("latest.md"), "# Latest\n").unwrap();
    daemon.expect_log("checkpoint not witnessed yet", 40);
    assert_eq!(verify_tiles(&env, &tiles, &[&w1, &w2]), Ok(second));
    let ledger = env.run(&["--format", "json", "verify"]).ok().json();
    assert!(
        ledger["checkpoint"]["size"].as_u64().unwrap() > second,
        "{ledger}"
    );
    // Once w2 is back, it catches up from the size it last saw and the log is published.
    w2.start();
    assert!(
        wait_for(Duration::from_secs(40), || verify_tiles(
            &env,
            &tiles,
            &[&w1, &w2]
        )
        .is_ok_and(|s| s > second)),
        "{}",
        daemon.log()
    );
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");

    // A bundle carries the cosignatures; `verify --witness` checks them.
    let bundle = env.path().join("audit.tar.gz");
    env.run(&["export", "--out", bundle.to_str().unwrap()]).ok();
    let ok = env.run(&[
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        log_vkey.to_str().unwrap(),
        "--witness",
        w1.vkey.to_str().unwrap(),
        "--witness",
        w2.vkey.to_str().unwrap(),
    ]);
    let ok = ok.ok();
    assert!(ok.stdout.contains("cosigned by"), "{}", ok.stdout);
    // A witness the bundle has no cosignature from fails the policy, unless the quorum
    // allows it.
    let stranger = Witness::init(root.path(), "stranger.example/w3", &log_vkey);
    let bad = env.run(&[
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        log_vkey.to_str().unwrap(),
        "--witness",
        w1.vkey.to_str().unwrap(),
        "--witness",
        stranger.vkey.to_str().unwrap(),
    ]);
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("FAIL witnesses: cosigned by 1 of 2"),
        "{}",
        bad.stdout
    );

    // The fork: the copied ledger grows another way. Both witnesses refuse it, and keep it
    // as evidence; nothing of it is published.
    for i in 0..60 {
        std::fs::write(
            fork.docs().join(format!("fork-{i}.md")),
            format!("# Fork {i}\n"),
        )
        .unwrap();
    }
    fork.run(&["collect"]).ok();
    let f = fork.run(&["--format", "json", "checkpoint"]).ok();
    assert_eq!(f.json()["cosignatures"], 0, "{}", f.stderr);
    for w in [&w1, &w2] {
        let refusals = &w.logs()["refusals"];
        assert_eq!(refusals.as_array().unwrap().len(), 1, "{refusals}");
        assert_eq!(refusals[0]["status"], 422);
        assert!(refusals[0]["reason"].as_str().unwrap().contains("forked"));
    }
    // What the fork may publish is the history it shares, as the witnesses saw it.
    assert_eq!(
        verify_tiles(&fork, &env.path().join("www/fork"), &[&w1, &w2]),
        Ok(first)
    );

    // A quorum of one of two: with w2 down and `witness_quorum = 1`, a checkpoint that w1
    // alone cosigns is published; a verifier that asks for both refuses it, one that asks
    // for one of the two accepts it.
    w2.stop();
    let one = cfg.replace("[ledger]\n", "[ledger]\nwitness_quorum = 1\n");
    assert_ne!(one, cfg, "the test config has a [ledger] table");
    std::fs::write(env.config(), &one).unwrap();
    std::fs::write(env.docs().join("quorum.md"), "# Quorum\n").unwrap();
    env.run(&["collect"]).ok();
    let cp = env.run(&["--format", "json", "checkpoint"]).ok().json();
    assert_eq!(cp["cosignatures"], 1, "{cp}");
    let size = cp["size"].as_u64().unwrap();
    let both = verify_tiles(&env, &tiles, &[&w1, &w2]);
    assert!(
        both.as_ref()
            .is_err_and(|e| e.contains("cosigned by 1 of 2")),
        "{both:?}"
    );
    let either = verify_tiles_with(&env, &tiles, &[&w1, &w2], &["--witness-quorum", "1"]);
    assert_eq!(either, Ok(size));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
