//! `evident run` as systemd runs it: notify protocol, signals, lock, reload.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::common::{CONFIG, Env, bin};

/// Polls `f` every 50 ms until it is true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A daemon under test, its log file and (optionally) its notify socket messages.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    messages: Option<mpsc::Receiver<String>>,
}

impl Daemon {
    pub fn start(env: &Env, notify: bool) -> Daemon {
        Self::start_with_env(env, notify, &[])
    }

    /// Starts it with extra environment variables.
    pub fn start_with_env(env: &Env, notify: bool, vars: &[(&str, &str)]) -> Daemon {
        // Outside the env: a watched root of "." must not see the daemon's own log.
        let log = std::env::temp_dir().join(format!("evident-daemon-{}.log", rand_suffix()));
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(env.config()).args(["-v", "run"]);
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        cmd.envs(vars.iter().copied());
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        let messages = notify.then(|| {
            let path = env.path().join("notify.sock");
            let sock = UnixDatagram::bind(&path).unwrap();
            cmd.env("NOTIFY_SOCKET", &path)
                .env("WATCHDOG_USEC", "300000");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.recv(&mut buf) {
                    if tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        break;
                    }
                }
            });
            rx
        });
        let child = cmd.spawn().unwrap();
        Daemon {
            child,
            log,
            messages,
        }
    }

    /// A field of the daemon's /proc status (`VmHWM`, `Threads`), as a number.
    pub fn proc_status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `secs` for `needle` in the log; fails showing the whole log.
    #[track_caller]
    pub fn expect_log(&self, needle: &str, secs: u64) {
        assert!(
            wait_for(Duration::from_secs(secs), || self.log().contains(needle)),
            "{needle:?} not logged:\n{}",
            self.log()
        );
    }

    fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig).unwrap();
    }

    /// Sends SIGTERM and returns the exit code and how long the exit took.
    pub fn stop(self) -> (Option<i32>, Duration, String) {
        self.stop_within(Duration::from_secs(30))
    }

    /// Sends SIGTERM and waits up to `limit` for the exit.
    fn stop_within(mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        let start = Instant::now();
        self.signal(Signal::TERM);
        let mut code = None;
        wait_for(limit, || match self.child.try_wait() {
            Ok(Some(s)) => {
                code = s.code();
                true
            }
            _ => false,
        });
        let took = start.elapsed();
        let _ = self.child.kill();
        (code, took, self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn every_second(env: &Env) {
    std::fs::write(
        env.config(),
        CONFIG.replace("*/15 * * * *", "* * * * * *").replace(
            "origin = \"test.evident.local/aims\"",
            "origin = \"test.evident.local/aims\"\ncheckpoint_interval = \"1s\"",
        ),
    )
    .unwrap();
}

fn query_uris(env: &Env, control: &str) -> Vec<String> {
    let r = env.run(&["query", control, "--format", "json"]);
    if r.code != 0 {
        return Vec::new();
    }
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uri"].as_str().unwrap().to_owned())
        .collect()
}

/// Writes `docs/<name>` mapped to `control` and waits until it is the control's evidence.
fn write_and_expect(env: &Env, daemon: &Daemon, name: &str, control: &str) {
    let content = format!("---\ncontrols: [{control}]\n---\n# {name}\n");
    std::fs::write(env.docs().join(name), content).unwrap();
    let want = vec![format!("file://docs/{name}")];
    assert!(
        wait_for(Duration::from_secs(30), || query_uris(env, control) == want),
        "{}",
        daemon.log()
    );
}

/// Runs of `collector` in the run history (an unchanged run appends no entry).
fn count_runs(env: &Env, collector: &str) -> i64 {
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM runs WHERE collector = ?1",
        [collector],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn notify_protocol_schedules_and_clean_shutdown() {
    let env = Env::new();
    every_second(&env);
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, true);
    let rx = daemon.messages.as_ref().unwrap();
    let mut seen: Vec<String> = Vec::new();
    let drain = |seen: &mut Vec<String>, until: Duration, want: &dyn Fn(&[String]) -> bool| {
        let start = Instant::now();
        while start.elapsed() < until && !want(seen) {
            if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
                seen.push(m);
            }
        }
        want(seen)
    };
    assert!(
        drain(&mut seen, Duration::from_secs(10), &|s| s
            .iter()
            .any(|m| m.contains("READY=1"))),
        "no READY=1: {seen:?}\n{}",
        daemon.log()
    );
    assert!(
        seen.iter()
            .any(|m| m.contains("STATUS=") && m.contains("entries")),
        "{seen:?}"
    );
    assert!(
        drain(&mut seen, Duration::from_secs(30), &|s| s
            .iter()
            .filter(|m| m.contains("WATCHDOG=1"))
            .count()
            >= 3),
        "watchdog pings every 150 ms expected: {seen:?}"
    );
    // A new file reaches the ledger on the next tick.
    write_and_expect(&env, &daemon, "late.md", "A.9.2");
    // Readers work while the daemon writes.
    env.run(&["verify"]).ok();
    // SIGHUP: RELOADING=1, then READY=1 again.
    seen.clear();
    daemon.signal(Signal::HUP);
    assert!(
        drain(&mut seen, Duration::from_secs(30), &|s| {
            let r = s
                .iter()
                .position(|m| m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC="));
            r.is_some_and(|r| s[r..].iter().any(|m| m.contains("READY=1")))
        }),
        "no RELOADING=1 then READY=1: {seen:?}"
    );
    assert!(
        wait_for(Duration::from_secs(30), || count_runs(&env, "docs") >= 2),
        "every run is in the run history"
    );

    let log_before_stop = daemon.log();
    daemon.signal(Signal::TERM);
    let mut stopping = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) && !stopping {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
            stopping = m.contains("STOPPING=1");
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM\n{log_before_stop}");
    let (code, took, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    // Within the unit's TimeoutStopSec, with room for a loaded machine.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(log.contains("stopped"), "{log}");
    // The final checkpoint covers everything recorded.
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let (n, cp): (i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM entries), (SELECT MAX(size) FROM checkpoints)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, cp, "final checkpoint covers all entries");
    env.run(&["verify"]).ok();
}

#[test]
fn a_second_daemon_on_the_same_state_refuses() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let first = Daemon::start(&env, false);
    first.expect_log("evident is running", 10);
    let second = env.run(&["run"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("already using the state directory"),
        "{}",
        second.stderr
    );
    let (code, _, _) = first.stop();
    assert_eq!(code, Some(0));
    // Once the first is gone the lock is free again.
    let third = Daemon::start(&env, false);
    third.expect_log("evident is running", 10);
    assert_eq!(third.stop().0, Some(0));
}

/// A ledger of an older schema (before the run history and the superseded record) is
/// migrated by the daemon itself: `run` is a writing command.
#[test]
fn the_daemon_migrates_a_ledger_of_an_older_schema() {
    let env = Env::new();
    every_second(&env);
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    {
        let c = env.tamper_db();
        c.execute_batch("DROP TABLE superseded; DROP TABLE runs; PRAGMA user_version = 6;")
            .unwrap();
    }
    let daemon = Daemon::start(&env, false);
    assert!(
        wait_for(Duration::from_secs(15), || {
            std::panic::catch_unwind(|| count_runs(&env, "docs")).unwrap_or(0) >= 2
        }),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.stop().0, Some(0));
    env.run(&["verify"]).ok();
}

#[test]
fn sighup_reloads_or_keeps_the_running_config() {
    let env = Env::new();
    every_second(&env);
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    assert!(
        wait_for(Duration::from_secs(10), || count_runs(&env, "docs") >= 1),
        "{}",
        daemon.log()
    );

    // An invalid config is refused; the daemon keeps collecting with the old one.
    let good = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        good.replace("kind = \"filesystem\"", "kind = \"filesystem\"\nbogus = 1"),
    )
    .unwrap();
    daemon.signal(Signal::HUP);
    daemon.expect_log("config reload refused", 5);
    assert!(
        daemon.log().contains("unknown field `bogus`"),
        "{}",
        daemon.log()
    );
    let runs = count_runs(&env, "docs");
    assert!(
        wait_for(Duration::from_secs(30), || count_runs(&env, "docs") > runs),
        "still running"
    );

    // A valid config adding a collector takes effect without a restart.
    let extra = env.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(
        extra.join("x.md"),
        "---\ncontrols: [A.10.3]\n---\n# Supplier\n",
    )
    .unwrap();
    std::fs::write(
        env.config(),
        format!(
            "{good}\n[[collectors]]\nname = \"extra\"\nkind = \"filesystem\"\nroot = \"extra\"\n"
        ),
    )
    .unwrap();
    daemon.signal(Signal::HUP);
    assert!(
        wait_for(Duration::from_secs(10), || query_uris(&env, "A.10.3")
            == vec!["file://extra/x.md"]),
        "{}",
        daemon.log()
    );
    assert!(daemon.log().contains("config reloaded"), "{}", daemon.log());

    // Removing it stops it; the first collector goes on.
    std::fs::write(env.config(), &good).unwrap();
    daemon.signal(Signal::HUP);
    daemon.expect_log("collector removed", 5);
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

fn watching(env: &Env, root: &str) {
    std::fs::write(
        env.config(),
        CONFIG
            .replace("schedule = \"*/15 * * * *\"\n", "watch = true\n")
            .replace("root = \"docs\"", &format!("root = \"{root}\"")),
    )
    .unwrap();
}

#[test]
fn watched_folders_record_changes_without_waiting_for_the_schedule() {
    let env = Env::new();
    watching(&env, "docs");
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    daemon.expect_log("watching for changes", 10);
    assert!(
        wait_for(Duration::from_secs(10), || count_runs(&env, "docs") == 1),
        "{}",
        daemon.log()
    );

    // A written file reaches the ledger promptly.
    write_and_expect(&env, &daemon, "new.md", "A.9.3");
    // A rename and a delete too.
    std::fs::rename(env.docs().join("new.md"), env.docs().join("renamed.md")).unwrap();
    assert!(wait_for(Duration::from_secs(30), || query_uris(
        &env, "A.9.3"
    )
    .contains(&"file://docs/renamed.md".to_owned())));
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let removed = || -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM entries WHERE kind = 'document_removed'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        wait_for(Duration::from_secs(30), || removed() >= 1),
        "rename records the old name as removed"
    );

    // A burst of 10,000 events causes a handful of scans, not thousands.
    let runs_before = count_runs(&env, "docs");
    let burst = env.docs().join("burst");
    std::fs::create_dir(&burst).unwrap();
    for i in 0..2_000 {
        let p = burst.join(format!("f{i}.txt"));
        std::fs::write(&p, b"x").unwrap(); // create + modify + close_write: several events each
        std::fs::write(&p, b"y").unwrap();
    }
    assert!(
        wait_for(Duration::from_secs(20), || {
            let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
            db.query_row(
                "SELECT COUNT(*) FROM artefacts WHERE uri LIKE 'file://docs/burst/%'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 2_000
        }),
        "{}",
        daemon.log()
    );
    // Wait for the runs to stop coming (no new run for 2 s), then count: one burst of 2,000
    // files must cause a handful of scans, not one per file or per debounce window.
    let mut last = count_runs(&env, "docs");
    let quiet = wait_for(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = count_runs(&env, "docs");
        std::mem::replace(&mut last, now) == now
    });
    assert!(
        quiet,
        "runs never stopped after the burst\n{}",
        daemon.log()
    );
    let scans = last - runs_before;
    assert!((1..=20).contains(&scans), "{scans} scans for one burst");
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_watched_root_holding_the_state_directory_does_not_wake_itself() {
    let env = Env::new();
    watching(&env, ".");
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    assert!(
        wait_for(Duration::from_secs(10), || count_runs(&env, "docs") >= 1),
        "{}",
        daemon.log()
    );
    // Let any self-inflicted events settle, then check that no further runs happen.
    let mut settled = count_runs(&env, "docs");
    let quiet = wait_for(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = count_runs(&env, "docs");
        std::mem::replace(&mut settled, now) == now
    });
    assert!(quiet, "the daemon keeps waking itself\n{}", daemon.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_runs(&env, "docs"), settled, "{}", daemon.log());
    assert!(settled <= 5, "{settled} runs without any change");
    assert_eq!(daemon.stop().0, Some(0));
}

#[test]
fn a_failing_collector_backs_off_and_the_others_go_on() {
    let env = Env::new();
    every_second(&env);
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        format!("{cfg}\n[[collectors]]\nname = \"gone\"\nkind = \"filesystem\"\nroot = \"no-such-folder\"\nschedule = \"* * * * * *\"\n"),
    )
    .unwrap();
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, true);
    daemon.expect_log("collector failed", 30);
    let failed_at = Instant::now();
    let log = daemon.log();
    assert!(
        log.contains("collector=gone") && log.contains("attempt=1") && log.contains("retry_in_s="),
        "{log}"
    );
    assert!(log.contains("check `root`"), "{log}");
    // The healthy collector keeps its one-second schedule meanwhile; the failing one waits
    // out its backoff (7.5 s or more) instead of running every second.
    let docs_runs = count_runs(&env, "docs");
    assert!(
        wait_for(Duration::from_secs(30), || count_runs(&env, "docs")
            >= docs_runs + 3),
        "{}",
        daemon.log()
    );
    // The first retry comes no sooner than 7.5 s (10 s less 25 % jitter), the next after
    // 15 s more: however slow this machine, at most this many runs fit.
    let secs = failed_at.elapsed().as_secs_f64();
    let allowed = 1 + i64::from(secs >= 7.5) + i64::from(secs >= 22.5) + i64::from(secs >= 52.5);
    assert!(
        count_runs(&env, "gone") <= allowed,
        "a failed run is recorded once, then backs off ({secs:.1} s)"
    );
    // The failure is visible in the status line.
    let rx = daemon.messages.as_ref().unwrap();
    let mut status = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) && !status.contains("failing: gone") {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100))
            && m.contains("STATUS=")
        {
            status = m;
        }
    }
    assert!(status.contains("failing: gone"), "{status}");
    assert_eq!(daemon.stop().0, Some(0));
}

#[test]
fn a_spent_rate_limit_is_waited_out_not_hammered() {
    let f = crate::peers::forge(&[]);
    let p = f.port;
    crate::peers::json(
        p,
        "POST",
        "/_admin/fault",
        serde_json::json!({"prefix": "/repos/", "mode": "status", "status": 429, "headers": {"Retry-After": "1800"}, "times": 100}),
    );
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        format!("{cfg}\n[[collectors]]\nname = \"gh\"\nkind = \"github_actions\"\nrepo = \"o/r\"\napi_url = \"http://127.0.0.1:{p}\"\nschedule = \"* * * * * *\"\n"),
    )
    .unwrap();
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    daemon.expect_log("collector failed", 15);
    let log = daemon.log();
    // The server's 30 minutes win over the 10 s backoff and the one-second schedule.
    let wait: u64 = log
        .split("retry_in_s=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!(wait >= 1790, "retry in {wait} s: {log}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_runs(&env, "gh"), 1, "one failed run, then it waits");
    let reqs: serde_json::Value =
        serde_json::from_str(&crate::peers::http(p, "GET", "/_admin/requests", None).1).unwrap();
    assert_eq!(
        reqs["total"], 1,
        "one request, no retries within the run: {reqs}"
    );
    assert_eq!(daemon.stop().0, Some(0));
}

#[test]
fn the_daemon_timestamps_new_checkpoints_with_the_tsa() {
    let tsa_dir = tempfile::tempdir().unwrap();
    let tsa = crate::peers::fixture("tsa_server.py", &[tsa_dir.path().to_str().unwrap()]);
    let env = Env::new();
    every_second(&env);
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + &format!(
            "\n[anchoring]\ntsa_url = \"http://127.0.0.1:{}/\"\nca_file = \"{}\"\n",
            tsa.port,
            tsa_dir.path().join("ca.crt").display()
        );
    std::fs::write(env.config(), cfg).unwrap();
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    daemon.expect_log("checkpoint timestamped", 30);
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    // Every stored token verifies against its checkpoint, and `verify` says so.
    let v = env.run(&["verify", "--format", "json"]).ok().json();
    assert!(v["timestamps"].as_u64().unwrap() >= 1, "{v}");
}

/// With `[publish]`, each new checkpoint the daemon signs is published as tiles, and the
/// published log verifies from its tiles alone as it grows.
#[test]
fn the_daemon_publishes_tiles_after_each_checkpoint() {
    let env = Env::new();
    every_second(&env);
    let tiles = env.path().join("www/log");
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + &format!("\n[publish]\nurl = \"file://{}\"\n", tiles.display());
    std::fs::write(env.config(), cfg).unwrap();
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    daemon.expect_log("tiles published", 30);
    let vkey = env.state().join("verifier.vkey");
    let size = |env: &Env| {
        let r = env.run(&[
            "--format",
            "json",
            "verify",
            "--tiles",
            tiles.to_str().unwrap(),
            "--key",
            vkey.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        r.json()["checkpoint"]["size"].as_u64().unwrap()
    };
    let first = size(&env);
    assert!(first >= 5, "{first}");
    write_and_expect(&env, &daemon, "later.md", "A.9.2");
    assert!(
        wait_for(Duration::from_secs(30), || size(&env) > first),
        "{}",
        daemon.log()
    );
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    // Readable by the service's group (a web server), not by others.
    let mode = std::fs::metadata(tiles.join("checkpoint"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o640
    );
}

/// Issue 11, item 4: a collector blocked in a system call (here `flock`, the collector's
/// writer lock held by another process) fails its run at `run_timeout`, shows in `STATUS=`
/// and the log, is not started again while it is stuck, and SIGTERM still exits within the
/// unit's TimeoutStopSec (20 s) after signing the final checkpoint.
#[test]
fn a_collector_stuck_in_a_system_call_cannot_wedge_the_daemon() {
    let env = Env::new();
    every_second(&env);
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace(
            "kind = \"filesystem\"",
            "kind = \"filesystem\"\nrun_timeout = \"2s\"",
        ),
    )
    .unwrap();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    // Another process holds the collector's lock and never lets go.
    let lock = std::fs::File::open(env.state().join("locks/collector-docs.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let daemon = Daemon::start(&env, true);
    daemon.expect_log("did not finish within 2s (run_timeout)", 30);
    daemon.expect_log("is still blocked", 30);
    let rx = daemon.messages.as_ref().unwrap();
    let start = Instant::now();
    let mut failing = false;
    while start.elapsed() < Duration::from_secs(30) && !failing {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            failing = m.contains("STATUS=") && m.contains("failing: docs");
        }
    }
    assert!(
        failing,
        "STATUS= never named the stuck collector\n{}",
        daemon.log()
    );
    let before: i64 = rusqlite::Connection::open(env.state().join("evident.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    let (code, took, log) = daemon.stop_within(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(20), "took {took:?}\n{log}");
    assert!(log.contains("stopped"), "{log}");
    let cp: i64 = rusqlite::Connection::open(env.state().join("evident.db"))
        .unwrap()
        .query_row("SELECT MAX(size) FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert!(
        cp >= before,
        "the final checkpoint covers what was recorded"
    );
    drop(lock);
}

/// Issue 12, item 8: at its default level the daemon tells its story (start with config,
/// ledger and verifier key; each run with counts and duration; checkpoints; reloads; stop),
/// and under `--log-format json` every line, the final error too, is JSON.
#[test]
fn the_daemon_logs_at_info_by_default_and_json_is_all_json() {
    let env = Env::new();
    every_second(&env);
    env.run(&["init"]).ok();
    let log = std::env::temp_dir().join(format!("evident-info-{}.log", rand_suffix()));
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(env.config())
        .arg("run")
        .env_remove("EVIDENT_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(30), || {
            let l = read();
            l.contains("evident is running")
                && l.contains("duration_ms=")
                && l.contains("checkpoint signed")
        }),
        "{}",
        read()
    );
    let l = read();
    assert!(l.contains("verifier_key=test.evident.local/aims+"), "{l}");
    assert!(l.contains("config="), "{l}");
    kill_process(Pid::from_child(&child), Signal::HUP).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || read()
            .contains("config reloaded")),
        "{}",
        read()
    );
    kill_process(Pid::from_child(&child), Signal::TERM).unwrap();
    assert!(wait_for(Duration::from_secs(30), || child
        .try_wait()
        .unwrap()
        .is_some()));
    assert!(read().contains("stopped"), "{}", read());
    let _ = std::fs::remove_file(&log);

    // JSON: a failing command's every stderr line parses, the error among them.
    let r = env.run(&[
        "--log-format",
        "json",
        "--state-dir",
        "/nonexistent/state",
        "verify",
    ]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.trim().is_empty());
    for line in r.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        if v["level"] == "ERROR" {
            assert!(
                v["fields"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no ledger"),
                "{v}"
            );
        }
    }
}

/// Issue 12, item 9: a collector whose schedule is far off runs at start when it never ran,
/// and not again on a restart soon after (its last run is within the schedule's period).
#[test]
fn a_new_install_collects_at_start_not_at_the_first_tick() {
    let env = Env::new();
    std::fs::write(env.config(), CONFIG.replace("*/15 * * * *", "0 3 * * 1-5")).unwrap();
    env.run(&["init"]).ok();
    let daemon = Daemon::start(&env, false);
    assert!(
        wait_for(Duration::from_secs(30), || count_runs(&env, "docs") == 1),
        "{}",
        daemon.log()
    );
    daemon.expect_log("never run before", 10);
    assert_eq!(daemon.stop().0, Some(0));
    let again = Daemon::start(&env, false);
    again.expect_log("evident is running", 30);
    // Give a wrong start-up run every chance to happen.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_runs(&env, "docs"), 1, "{}", again.log());
    assert_eq!(again.stop().0, Some(0));
}
