//! Bad input gets a clear message and the right exit code, and loses nothing recorded.

use std::os::unix::ffi::OsStrExt;

use crate::common::{CONFIG, Env};

fn entry_count(env: &Env) -> i64 {
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn config_errors_name_file_line_and_fix() {
    let env = Env::ready();
    let before = entry_count(&env);
    let cfg = env.config();

    std::fs::write(&cfg, "[ledger\npath = 1\n").unwrap();
    let r = env.run(&["collect"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{}:1:", cfg.display())),
        "{}",
        r.stderr
    );

    std::fs::write(
        &cfg,
        CONFIG.replace("root = \"docs\"", "root = \"docs\"\nrecursive = true"),
    )
    .unwrap();
    let r = env.run(&["config", "check"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(":10:1: unknown field `recursive`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("check its spelling"), "{}", r.stderr);

    std::fs::write(&cfg, CONFIG.replace("A.5.3", "A.5.7")).unwrap();
    let r = env.run(&["collect"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("unknown control or clause `A.5.7`; did you mean"),
        "{}",
        r.stderr
    );

    std::fs::write(&cfg, CONFIG.replace("*/15 * * * *", "*/15 * * *")).unwrap();
    let r = env.run(&["config", "check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has 4 fields"), "{}", r.stderr);

    std::fs::write(
        &cfg,
        CONFIG.replace("test.evident.local/aims", "another/log"),
    )
    .unwrap();
    let r = env.run(&["collect"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot change"), "{}", r.stderr);

    let out = std::process::Command::new(crate::common::bin())
        .args(["--config", "/nonexistent/evident.toml", "collect"])
        .output()
        .unwrap();
    let r = crate::common::Run {
        code: out.status.code().unwrap(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("config file not found"), "{}", r.stderr);

    std::fs::write(&cfg, CONFIG).unwrap();
    assert_eq!(entry_count(&env), before);
    env.run(&["verify"]).ok();
}

#[test]
fn unknown_control_ids_suggest_neighbours() {
    let env = Env::ready();
    let r = env.run(&["query", "A.6.2.9"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean A.6.2.8"), "{}", r.stderr);
    let r = env.run(&["query", "Z"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("evident controls"), "{}", r.stderr);
}

#[test]
fn commands_before_init_say_what_to_do() {
    let env = Env::new();
    for cmd in [
        &["collect"][..],
        &["query", "A.2"],
        &["verify"],
        &["proof", "0"],
        &["checkpoint"],
    ] {
        let r = env.run(cmd);
        assert_eq!(r.code, 1, "{cmd:?}");
        assert!(
            r.stderr.contains("run `evident init` first"),
            "{cmd:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn symlink_loops_escapes_and_odd_names_do_not_stop_a_scan() {
    use std::os::unix::fs::symlink;
    let env = Env::ready();
    let before = entry_count(&env);
    let docs = env.docs();
    symlink(docs.join("loop-b"), docs.join("loop-a")).unwrap();
    symlink(docs.join("loop-a"), docs.join("loop-b")).unwrap();
    symlink(&docs, docs.join("impact/up")).unwrap();
    symlink("/etc/hostname", docs.join("escape.md")).unwrap();
    std::fs::write(
        docs.join(std::ffi::OsStr::from_bytes(b"r\xe9sum\xe9.md")),
        "# latin-1 name",
    )
    .unwrap();
    let r = env.run(&["collect", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("symlink loop"), "{}", r.stderr);
    assert!(
        r.stderr.contains("outside the collector root"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["collectors"][0]["new"], 1);
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let uri: String = db
        .query_row("SELECT uri FROM entries WHERE uri LIKE '%sum%'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(uri, "file://docs/r%E9sum%E9.md");
    assert!(entry_count(&env) > before);
    env.run(&["verify"]).ok();
}

/// Runs a command as an unprivileged user when the tests run as root (CI), so that a
/// mode-000 file really is unreadable. The binary is copied into `env` first: the checkout
/// it was built in may not be reachable by that user.
fn unprivileged(env: &Env) -> Option<std::process::Command> {
    let uid = rustix::process::getuid();
    if !uid.is_root() {
        return Some(std::process::Command::new(crate::common::bin()));
    }
    let Some(setpriv) = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        // As root nothing is unreadable: without setpriv the test would assert nothing.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "setpriv (util-linux) is needed to run the permission test as an unprivileged user"
        );
        return None;
    };
    let bin = env.path().join("evident-copy");
    if !bin.exists() {
        std::fs::copy(crate::common::bin(), &bin).ok()?;
    }
    let mut c = std::process::Command::new(setpriv);
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin);
    Some(c)
}

#[test]
fn an_unreadable_file_fails_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let Some(_) = unprivileged(&env) else {
        eprintln!("skipped: running as root without setpriv");
        return;
    };
    // The unprivileged user must be able to reach and write everything else.
    for p in [
        env.path().to_path_buf(),
        env.docs(),
        env.docs().join("impact"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    for f in std::fs::read_dir(env.docs()).unwrap().flatten() {
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(env.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    env.run_with(unprivileged(&env).unwrap(), &["init"]).ok();
    env.run_with(unprivileged(&env).unwrap(), &["collect"]).ok();
    let before = entry_count(&env);
    let secret = env.docs().join("secret.md");
    std::fs::write(&secret, "# locked").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(env.docs().join("fine.md"), "# fine").unwrap();
    let r = env.run_with(
        unprivileged(&env).unwrap(),
        &["collect", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("secret.md") && r.stderr.contains("Permission denied"),
        "{}",
        r.stderr
    );
    let s = &r.json()["collectors"][0];
    assert_eq!(
        (s["new"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    // fine.md and the run entry were recorded; nothing earlier was lost.
    assert_eq!(entry_count(&env), before + 2);
    // The failed file is retried next time and counted again, not forgotten.
    let r = env.run_with(
        unprivileged(&env).unwrap(),
        &["collect", "--format", "json"],
    );
    assert_eq!(r.json()["collectors"][0]["failed"], 1);
    env.run_with(unprivileged(&env).unwrap(), &["verify"]).ok();
}

/// Issue 11, item 8: `config check` refuses what would fail or leak later.
#[test]
fn config_check_refuses_missing_roots_never_firing_schedules_and_a_ledger_inside_evidence() {
    let env = Env::new();
    let check = |cfg: String| {
        std::fs::write(env.config(), cfg).unwrap();
        env.run(&["config", "check"])
    };
    check(CONFIG.to_owned()).ok();
    let r = check(CONFIG.replace("root = \"docs\"", "root = \"no-such-folder\""));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("root") && r.stderr.contains("no-such-folder"),
        "{}",
        r.stderr
    );
    let r = check(CONFIG.replace("root = \"docs\"", "root = \".\""));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("state directory"), "{}", r.stderr);
    assert!(r.stderr.contains("inside its root"), "{}", r.stderr);
    let r = check(CONFIG.replace("*/15 * * * *", "0 0 30 2 *"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("never fires"), "{}", r.stderr);
}

/// Issue 11, item 8: file names and titles cannot drive the terminal, and CSV cells cannot
/// run as spreadsheet formulas (query CSV and the bundle's index.csv).
#[test]
fn terminal_escapes_and_csv_formulas_are_neutralised() {
    let env = Env::new();
    std::fs::write(
        env.docs().join("evil.md"),
        "---\ncontrols: [A.2.2]\ntitle: \"=HYPERLINK(\\\"http://x\\\",\\\"ok\\\")\"\n---\n# x\n",
    )
    .unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"\x1b]0;owned\x07\x1b[2Jname.md");
    std::fs::write(env.docs().join(odd), "---\ncontrols: [A.2.2]\n---\n# y\n").unwrap();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    let table = env.run(&["query", "A.2.2"]).ok();
    assert!(!table.stdout.contains('\u{1b}'), "{:?}", table.stdout);
    assert!(!table.stdout.contains('\u{7}'), "{:?}", table.stdout);
    let csv = env.run(&["query", "A.2.2", "--format", "csv"]).ok();
    assert!(csv.stdout.contains("'=HYPERLINK"), "{}", csv.stdout);
    for line in csv.stdout.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '@']), "{line}");
        }
    }
    env.run(&["checkpoint"]).ok();
    let out = env.path().join("b");
    env.run(&["export", "--out", out.to_str().unwrap()]).ok();
    let index = std::fs::read_to_string(out.join("index.csv")).unwrap();
    assert!(index.contains("'=HYPERLINK"), "{index}");
    crate::common::verify_bundle(&env, &out, &[]).ok();
}

/// Issue 12, item 18: a reader that goes away (`| head -1`) ends the command quietly with
/// the status a shell gives SIGPIPE, never `error: Broken pipe` or a panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let env = Env::new();
    // Output well past a pipe's 64 KiB buffer, so the writer must meet the closed end.
    for i in 0..1500 {
        std::fs::write(
            env.docs().join(format!("note-{i:04}.md")),
            format!("---\ncontrols: [A.2.2]\n---\n# Note {i}\n"),
        )
        .unwrap();
    }
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    for args in [
        ["query", "A", "--format", "json"],
        ["query", "A", "--format", "csv"],
        ["query", "A", "--format", "table"],
    ] {
        let mut child = std::process::Command::new(crate::common::bin())
            .arg("--config")
            .arg(env.config())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Issue 12, item 12: `sudo evident add` (root on the service's state directory) refuses,
/// naming the owner, instead of leaving root-owned files the service cannot read.
#[test]
fn writing_as_another_user_than_the_owner_refuses() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    env.run(&["init"]).ok();
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root"
        );
        eprintln!("skipped: needs root to hand the state directory to another user");
        return;
    }
    // Hand the ledger to `nobody`, as the service's own user would own it.
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.state())
        .status()
        .unwrap();
    assert!(st.success());
    let doc = env.path().join("minutes.txt");
    std::fs::write(&doc, "minutes").unwrap();
    for args in [
        vec!["add", doc.to_str().unwrap(), "-C", "9.3"],
        vec!["collect"],
        vec!["checkpoint"],
        vec!["run"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("belongs to nobody"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("sudo -u nobody"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Readers still work, and nothing was left behind for root.
    env.run(&["verify"]).ok();
    env.run(&["query", "A.2"]).ok();
    for e in std::fs::read_dir(env.state()).unwrap().flatten() {
        assert_eq!(
            e.metadata().unwrap().uid(),
            65534,
            "{} is root's",
            e.path().display()
        );
    }
}

/// Issue 12, item 13: `--state-dir` without a config answers readiness without the
/// organisation's policies; it says so instead of passing the defaults off as the answer.
#[test]
fn policies_missing_without_a_config_are_named() {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    for cmd in [["coverage"], ["soa"]] {
        let o = std::process::Command::new(crate::common::bin())
            .args([
                "--state-dir",
                env.state().to_str().unwrap(),
                "--config",
                "/nonexistent/evident.toml",
            ])
            .args(cmd)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{cmd:?}: {err}");
        assert!(
            err.contains("/nonexistent/evident.toml does not exist"),
            "{cmd:?}: {err}"
        );
        assert!(err.contains("pass --config"), "{cmd:?}: {err}");
    }
    // With the config, nothing to say.
    let r = env.run(&["coverage"]).ok();
    assert!(!r.stderr.contains("no config"), "{}", r.stderr);
}

/// Issue 12, item 15 (part): `config check` shows each collector's next three runs, refuses
/// a program that is not executable, and `--connect` fails for one that does not exist.
#[test]
fn config_check_shows_next_runs_and_checks_programs() {
    let env = Env::new();
    let r = env.run(&["config", "check"]).ok();
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("docs (filesystem)"))
        .unwrap_or_default();
    assert_eq!(line.matches(" UTC").count(), 3, "{}", r.stdout);
    assert!(line.contains("*/15 * * * * -> next runs"), "{line}");
    let script = env.path().join("export-risks");
    std::fs::write(&script, "#!/bin/sh\necho\n").unwrap();
    let cmd = |program: &str| {
        format!(
            "{CONFIG}\n[[collectors]]\nname = \"risks\"\nkind = \"command\"\nprogram = \"{program}\"\n"
        )
    };
    // A bare name is looked up on PATH; this one is a path beside the config.
    std::fs::write(env.config(), cmd("./export-risks")).unwrap();
    let r = env.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not executable"), "{}", r.stderr);
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    env.run(&["config", "check"]).ok();
    env.run(&["config", "check", "--connect"]).ok();
    std::fs::write(env.config(), cmd("./no-such-program")).unwrap();
    env.run(&["config", "check"]).ok();
    let r = env.run(&["config", "check", "--connect"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no-such-program"), "{}", r.stderr);
}

/// A collector cannot report an artefact under Evident's own kinds (run records, removal
/// markers): the item fails with the reason, the rest is recorded, verify stays clean.
#[test]
fn reserved_kinds_from_a_collector_are_refused() {
    let env = Env::new();
    let script = env.path().join("feed.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         echo '{\"uri\": \"x://a\", \"kind\": \"collector_run\", \"content\": \"'$1'\"}'\n\
         echo '{\"uri\": \"x://b\", \"kind\": \"report_removed\", \"content\": \"'$1'\"}'\n\
         echo '{\"uri\": \"x://c\", \"kind\": \"report\", \"content\": \"'$1'\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let feed = |v: &str| {
        format!(
            "{CONFIG}\n[[collectors]]\nname = \"feed\"\nkind = \"command\"\nprogram = \"./feed.sh\"\nargs = [\"{v}\"]\ncontrols = [\"A.6.2.6\"]\n"
        )
    };
    std::fs::write(env.config(), feed("one")).unwrap();
    env.run(&["init"]).ok();
    for v in ["one", "two"] {
        std::fs::write(env.config(), feed(v)).unwrap();
        let r = env.run(&["collect", "feed"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        for uri in ["x://a", "x://b"] {
            assert!(
                r.stderr.contains(&format!("{uri}: kind")) && r.stderr.contains("is reserved"),
                "{}",
                r.stderr
            );
        }
    }
    let rows = env
        .run(&["query", "A.6.2.6", "--format", "json"])
        .ok()
        .json();
    let uris: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, vec!["x://c", "x://c"]);
    env.run(&["verify"]).ok();
}

/// Issue 12, item 15: the installed config is a minimal working one (one folder), and passes
/// `config check` once its folder exists; the full reference ships beside it.
#[test]
fn the_installed_template_is_minimal_and_works() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(root.join("config/evident.toml")).unwrap();
    assert_eq!(template.matches("[[collectors]]").count(), 1);
    let reference = std::fs::read_to_string(root.join("config/reference.toml")).unwrap();
    assert!(reference.matches("[[collectors]]").count() >= 15);
    let env = Env::new();
    let docs = env.path().join("documents");
    std::fs::create_dir_all(&docs).unwrap();
    let cfg = template
        .replace("/srv/evident/documents", docs.to_str().unwrap())
        .replace("/var/lib/evident", env.state().to_str().unwrap());
    std::fs::write(env.config(), cfg).unwrap();
    let r = env.run(&["config", "check"]).ok();
    assert!(
        r.stdout.contains("aims-documents (filesystem)"),
        "{}",
        r.stdout
    );
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
}
