//! Evidence content on object storage (`[blobs] url = "s3://…"`), against a real S3 server
//! (moto): collect, verify, show, export and backup read and write the bucket; a local
//! store migrates there, resumably; a SIGKILL between upload and commit loses nothing.

use std::process::Command;
use std::time::Duration;

use crate::common::{Env, Run, bin, sha256_hex, verify_bundle, walk};

const SECRET_VAR: &str = "EVIDENT_TEST_BLOB_SECRET";

/// The `[blobs]` table for moto on `port`.
fn blobs_table(port: u16, url: &str) -> String {
    format!(
        "\n[blobs]\nurl = \"{url}\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
         access_key_id = \"AKIDTEST\"\nsecret_env = \"{SECRET_VAR}\"\n"
    )
}

fn run(env: &Env, args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.env(SECRET_VAR, "test-secret-key");
    env.run_with(cmd, args)
}

/// The keys under `prefix` in `bucket`, as boto3 lists them, checked by `check` (Python).
fn bucket_check(port: u16, bucket: &str, prefix: &str, check: &str) {
    crate::peers::boto3(
        port,
        &format!(
            "keys = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}', Prefix='{prefix}'):\n\
             \x20   keys += [o['Key'] for o in page.get('Contents', [])]\n{check}"
        ),
    );
}

fn files_under(dir: &std::path::Path) -> usize {
    walk(dir).len()
}

/// The test workspace with its content in `url` on the S3 server at `port`.
fn bucket_env(port: u16, url: &str) -> Env {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap() + &blobs_table(port, url);
    std::fs::write(env.config(), cfg).unwrap();
    env
}

/// The config of a standby of `env`'s ledger: the same log, with the state directory
/// `standby` (where a backup is restored).
fn standby_config(env: &Env) -> std::path::PathBuf {
    let cfg = env.path().join("standby.toml");
    let text = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("path = \"state\"", "path = \"standby\"");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Runs `evident --config CFG args…` with the bucket's secret.
fn run_config(cfg: &std::path::Path, args: &[&str]) -> Run {
    let o = Command::new(bin())
        .env(SECRET_VAR, "test-secret-key")
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// How many entries the ledger holds.
fn entries(env: &Env) -> i64 {
    rusqlite::Connection::open(env.state().join("evident.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn content_lives_in_a_bucket() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    let p = srv.port;
    crate::peers::boto3(p, "s3.create_bucket(Bucket='evidence')");
    let env = bucket_env(p, "s3://evidence/aims");
    // A large file goes up in parts, never whole in memory.
    let big: Vec<u8> = (0..40u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(env.docs().join("model.bin"), &big).unwrap();

    run(&env, &["init"]).ok();
    // Without the secret nothing commits, and the run says which variable to set.
    let e = env.run(&["collect"]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(e.stderr.contains(SECRET_VAR), "{}", e.stderr);
    let before = entries(&env);
    assert_eq!(
        files_under(&env.state().join("blobs/outbox")),
        0,
        "the content of uncommitted entries is not left behind"
    );

    let c = run(&env, &["--format", "json", "collect"]).ok().json();
    assert!(entries(&env) >= before + 6, "{c}");
    // In the bucket under sha256/<2>/<64>, nothing left on this host.
    let digest = sha256_hex(&big);
    bucket_check(
        p,
        "evidence",
        "aims/",
        &format!(
            "assert 'aims/sha256/{}/{digest}' in keys, keys\n\
             assert len(keys) >= 6, keys\n\
             assert all(k.startswith('aims/sha256/') for k in keys), keys",
            &digest[..2]
        ),
    );
    // It went up in three parts of 16 MiB: a multipart object's ETag ends in -<parts>.
    crate::peers::boto3(
        p,
        &format!(
            "e = s3.head_object(Bucket='evidence', Key='aims/sha256/{}/{digest}')['ETag']\n\
             assert e.endswith('-3\"'), e",
            &digest[..2]
        ),
    );
    assert_eq!(files_under(&env.state().join("blobs/outbox")), 0);
    assert_eq!(files_under(&env.state().join("blobs/sha256")), 0);

    // Verify re-hashes every blob from the bucket.
    let v = run(&env, &["--format", "json", "verify"]).ok().json();
    assert_eq!(v["blobs"], 7, "six documents and the run record: {v}");
    // `show` streams it back.
    let index: i64 = rusqlite::Connection::open(env.state().join("evident.db"))
        .unwrap()
        .query_row(
            "SELECT idx FROM entries WHERE uri LIKE '%model.bin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut cmd = Command::new(bin());
    cmd.env(SECRET_VAR, "test-secret-key");
    let out = cmd
        .args(["--config", env.config().to_str().unwrap()])
        .args(["show", &index.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == big, "show gives the bytes back");
    // An export carries the content, and the auditor's verify passes.
    let bundle = env.path().join("bundle.tar.gz");
    run(&env, &["export", "--out", bundle.to_str().unwrap()]).ok();
    verify_bundle(&env, &bundle, &[]).ok();
    // A backup shares the bucket rather than copying it, and verifies.
    let b = run(
        &env,
        &[
            "--format",
            "json",
            "backup",
            env.path().join("bk").to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    assert_eq!(b["content_in"], "s3://evidence/aims", "{b}");
    let mut cmd = Command::new(bin());
    cmd.env(SECRET_VAR, "test-secret-key");
    let out = cmd
        .args([
            "--state-dir",
            env.path().join("bk").to_str().unwrap(),
            "verify",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An object damaged in the bucket is found by verify.
    crate::peers::boto3(
        p,
        &format!(
            "s3.put_object(Bucket='evidence', Key='aims/sha256/{}/{digest}', Body=b'tampered')",
            &digest[..2]
        ),
    );
    let v = run(&env, &["verify"]);
    assert_ne!(v.code, 0, "{}", v.stdout);
    assert!(
        v.stdout.contains(&digest) || v.stderr.contains(&digest),
        "{}{}",
        v.stdout,
        v.stderr
    );

    // A config that forgets [blobs] is refused before anything is written.
    let plain = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(env.config(), plain.split("\n[blobs]").next().unwrap()).unwrap();
    let e = run(&env, &["collect"]);
    assert_ne!(e.code, 0);
    assert!(
        e.stderr.contains("[blobs] url = \"s3://evidence/aims\""),
        "{}",
        e.stderr
    );
}

/// Every bucket request fails once, the way S3 fails under load (503 SlowDown, 500
/// InternalError, a dropped connection), through a proxy in front of moto: collect (a
/// multipart upload among its puts), checkpoint (the lease) and verify (every blob read
/// back) succeed by retrying with backoff, and nothing is lost.
#[test]
fn bucket_requests_are_retried_with_backoff() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    crate::peers::boto3(srv.port, "s3.create_bucket(Bucket='evidence')");
    let proxy = crate::peers::fixture("flaky_proxy.py", &[&srv.port.to_string()]);
    let env = bucket_env(proxy.port, "s3://evidence/aims");
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 239) as u8).collect();
    std::fs::write(env.docs().join("weights.bin"), &big).unwrap();
    run(&env, &["init"]).ok();
    run(&env, &["collect"]).ok();
    run(&env, &["checkpoint"]).ok();
    let v = run(&env, &["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let n = v["blobs"].as_u64().unwrap();
    assert!(n >= 6, "{v}");
    bucket_check(
        srv.port,
        "evidence",
        "aims/sha256/",
        &format!("assert 0 < len(keys) <= {n}, keys"),
    );
    let (code, body) = crate::peers::http(proxy.port, "GET", "/__proxy/faults", None);
    assert_eq!(code, 200, "{body}");
    let faults: serde_json::Value = serde_json::from_str(&body).unwrap();
    let met = |m: &str| faults[m].as_u64().unwrap_or(0);
    // Each upload, the multipart upload's start and completion, the lease, each read.
    assert!(met("PUT") >= n, "{faults}");
    assert!(met("POST") >= 2, "{faults}");
    assert!(met("GET") >= n, "{faults}");
}

#[test]
fn a_local_store_migrates_to_a_bucket() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    let p = srv.port;
    crate::peers::boto3(p, "s3.create_bucket(Bucket='archive')");
    let env = Env::ready();
    let endpoint = format!("http://127.0.0.1:{p}");
    // The access key id comes from the environment here.
    let with_key = |args: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.env(SECRET_VAR, "test-secret-key")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST");
        env.run_with(cmd, args)
    };
    let args = [
        "--format",
        "json",
        "blobs",
        "migrate",
        "--to",
        "s3://archive",
        "--endpoint",
        &endpoint,
        "--secret-env",
        SECRET_VAR,
    ];
    // Interrupted after one object: the second run copies the rest and skips it.
    let first_blob = walk(&env.state().join("blobs/sha256"))
        .into_iter()
        .next()
        .unwrap();
    let name = first_blob.file_name().unwrap().to_str().unwrap().to_owned();
    crate::peers::boto3(
        p,
        &format!(
            "s3.upload_file('{}', 'archive', 'sha256/{}/{name}')",
            first_blob.display(),
            &name[..2]
        ),
    );
    // An object of the right size but other content under a digest's name (planted, or
    // damaged in the store) is not taken for the blob: the migration names it and stops.
    let second = walk(&env.state().join("blobs/sha256"))
        .into_iter()
        .find(|b| b.file_name() != first_blob.file_name())
        .unwrap();
    let second_name = second.file_name().unwrap().to_str().unwrap().to_owned();
    let planted = format!("sha256/{}/{second_name}", &second_name[..2]);
    crate::peers::boto3(
        p,
        &format!(
            "b = bytearray(open('{}', 'rb').read()); b[0] ^= 1; \
             s3.put_object(Bucket='archive', Key='{planted}', Body=bytes(b))",
            second.display()
        ),
    );
    let refused = with_key(&args);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(&planted) && refused.stderr.contains("is not this content"),
        "{}",
        refused.stderr
    );
    assert!(
        !std::fs::read_to_string(env.config())
            .unwrap()
            .contains("[blobs]"),
        "nothing was switched"
    );
    crate::peers::boto3(
        p,
        &format!("s3.delete_object(Bucket='archive', Key='{planted}')"),
    );
    let m = with_key(&args).ok().json();
    let n = m["blobs"].as_u64().unwrap();
    assert!(n >= 5, "{m}");
    assert_eq!(m["present"], 1, "{m}");
    assert_eq!(m["copied"], n - 1, "{m}");
    assert!(
        std::fs::read_to_string(env.config())
            .unwrap()
            .contains("[blobs]\nurl = \"s3://archive\""),
        "the config was switched"
    );
    let again = with_key(&args).ok().json();
    assert_eq!(
        (again["copied"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(n)),
        "{again}"
    );
    // The local copies can go: everything reads from the bucket.
    std::fs::remove_dir_all(env.state().join("blobs/sha256")).unwrap();
    let v = with_key(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["blobs"], n, "{v}");
    // New content goes to the bucket too.
    std::fs::write(env.docs().join("later.md"), "# Later\n").unwrap();
    with_key(&["collect"]).ok();
    bucket_check(
        p,
        "archive",
        "sha256/",
        &format!("assert len(keys) > {n}, keys"),
    );
    // A local blob damaged before it leaves is refused, not uploaded under its name.
    let env2 = Env::ready();
    let victim = walk(&env2.state().join("blobs/sha256"))
        .into_iter()
        .next()
        .unwrap();
    let mut perm = std::fs::metadata(&victim).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&victim, perm).unwrap();
    std::fs::write(&victim, b"damaged").unwrap();
    let mut cmd = Command::new(bin());
    cmd.env(SECRET_VAR, "test-secret-key")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST");
    crate::peers::boto3(p, "s3.create_bucket(Bucket='archive2')");
    let mut args2 = args.to_vec();
    args2[5] = "s3://archive2";
    let e = env2.run_with(cmd, &args2[2..]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(e.stderr.contains("not to its name"), "{}", e.stderr);
}

/// SIGKILL while content is being uploaded: no entry is ever left without its content,
/// and the next run finishes the job.
#[test]
fn a_kill_between_upload_and_commit_loses_nothing() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    let p = srv.port;
    crate::peers::boto3(p, "s3.create_bucket(Bucket='crash')");
    let env = bucket_env(p, "s3://crash");
    for i in 0..400 {
        std::fs::write(
            env.docs().join(format!("doc-{i:04}.md")),
            format!("# Document {i}\n{}\n", "x".repeat(i * 37)),
        )
        .unwrap();
    }
    run(&env, &["init"]).ok();
    let mut killed_mid_run = 0;
    for delay_ms in [150u64, 400, 900] {
        std::fs::write(env.docs().join(format!("new-{delay_ms}.md")), "# new\n").unwrap();
        let mut child = Command::new(bin())
            .env(SECRET_VAR, "test-secret-key")
            .args(["--config", env.config().to_str().unwrap(), "collect"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever committed has its content in the bucket (or still in the outbox).
        let v = run(&env, &["--format", "json", "verify"]).ok().json();
        assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    }
    assert!(
        killed_mid_run > 0,
        "no kill landed during a run: the test proves nothing"
    );
    run(&env, &["collect"]).ok();
    let v = run(&env, &["--format", "json", "verify"]).ok().json();
    assert!(v["blobs"].as_u64().unwrap() >= 403, "{v}");
    assert_eq!(files_under(&env.state().join("blobs/outbox")), 0);
}

/// One sequencer per log (docs/scaling.md, failover): a ledger whose content is in a bucket
/// takes the lease there before it signs; a standby restored from a backup is refused while
/// the daemon holds it, takes over once the daemon stopped cleanly, and continues the
/// published log; the old host, now behind, can never sign again.
#[test]
fn one_sequencer_holds_the_lease_and_a_standby_takes_over() {
    let Some(srv) = crate::peers::moto() else {
        return;
    };
    let p = srv.port;
    crate::peers::boto3(p, "s3.create_bucket(Bucket='seq')");
    let env = Env::new();
    let tables = blobs_table(p, "s3://seq/content")
        + &format!(
            "\n[publish]\nurl = \"s3://seq/log\"\nendpoint = \"http://127.0.0.1:{p}\"\n\
             access_key_id = \"AKIDTEST\"\nsecret_env = \"{SECRET_VAR}\"\n"
        );
    // Watched, so the daemon itself uploads content (a folder event starts a run).
    let base = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("schedule = \"*/15 * * * *\"\n", "watch = true\n");
    std::fs::write(env.config(), base + &tables).unwrap();
    let standby_cfg = standby_config(&env);
    let standby = |args: &[&str]| run_config(&standby_cfg, args);
    run(&env, &["init"]).ok();
    run(&env, &["collect"]).ok();
    run(&env, &["checkpoint"]).ok();
    // A backup restored on the standby, which then records something of its own.
    run(
        &env,
        &["backup", env.path().join("standby").to_str().unwrap()],
    )
    .ok();
    let minutes = env.path().join("minutes.md");
    std::fs::write(&minutes, "# Board minutes\n").unwrap();
    standby(&["add", "--control", "A.2.2", minutes.to_str().unwrap()]).ok();

    // The origin records more, and its daemon signs it at start and holds the lease: the
    // standby may not sign.
    std::fs::write(env.docs().join("plan.md"), "# Plan\n").unwrap();
    run(&env, &["collect"]).ok();
    let signed_all = |env: &Env| -> bool {
        rusqlite::Connection::open(env.state().join("evident.db"))
            .unwrap()
            .query_row(
                "SELECT (SELECT MAX(size) FROM checkpoints) = (SELECT COUNT(*) FROM entries)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let daemon =
        crate::daemon::Daemon::start_with_env(&env, false, &[(SECRET_VAR, "test-secret-key")]);
    assert!(
        crate::daemon::wait_for(Duration::from_secs(60), || signed_all(&env)),
        "{}",
        daemon.log()
    );
    // The daemon records and uploads content of its own (its blob store's bucket client
    // lives inside the daemon: its clean stop below must not trip over it).
    std::fs::write(env.docs().join("live.md"), "# Live\n").unwrap();
    let live = || -> i64 {
        rusqlite::Connection::open(env.state().join("evident.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM entries WHERE uri LIKE '%live.md'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(
        crate::daemon::wait_for(Duration::from_secs(60), || live() == 1),
        "{}",
        daemon.log()
    );
    let e = standby(&["checkpoint"]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    let state = std::fs::canonicalize(env.state()).unwrap();
    assert!(
        e.stderr.contains(&format!("{}", state.display()))
            && e.stderr.contains("holds the sequencer lease"),
        "the refusal names the holder: {}",
        e.stderr
    );
    // A clean stop signs the last checkpoint and releases the lease.
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("released the sequencer lease"), "{log}");
    // The old backup diverged (its own entry where the daemon recorded others): refused
    // for good, though the lease is free.
    let e = standby(&["checkpoint"]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(
        e.stderr.contains("already reached size") || e.stderr.contains("two histories"),
        "{}",
        e.stderr
    );
    // Failover as documented: restore a backup taken after the last checkpoint, take the
    // lease by signing, and continue the published log.
    std::fs::remove_dir_all(env.path().join("standby")).unwrap();
    run(
        &env,
        &["backup", env.path().join("standby").to_str().unwrap()],
    )
    .ok();
    standby(&["add", "--control", "A.2.2", minutes.to_str().unwrap()]).ok();
    let cp = standby(&["--format", "json", "checkpoint"]).ok().json();
    assert!(
        cp["published"]["from"].as_u64().unwrap() > 0,
        "continued: {cp}"
    );
    // The old host, now behind the standby, can never sign again.
    std::fs::write(env.docs().join("late.md"), "# Late\n").unwrap();
    run(&env, &["collect"]).ok();
    let e = run(&env, &["checkpoint"]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(
        e.stderr.contains("holds the sequencer lease"),
        "{}",
        e.stderr
    );
}

/// The same against a second S3 implementation, s3s-fs, which checks every SigV4 signature
/// and honours conditional writes: a wrong secret fails and commits nothing; content goes
/// up (multipart above 16 MiB) and verifies; the lease's conditional writes hold there too.
#[test]
fn a_second_s3_implementation_checks_signatures_and_conditions() {
    let Some(srv) = crate::peers::s3s() else {
        return;
    };
    let p = srv.port;
    crate::peers::boto3(p, "s3.create_bucket(Bucket='evidence')");
    let env = bucket_env(p, "s3://evidence/aims");
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 241) as u8).collect();
    std::fs::write(env.docs().join("weights.bin"), &big).unwrap();
    run(&env, &["init"]).ok();
    // A wrong secret: the store refuses the signature, the run says which setting to fix,
    // and nothing commits.
    let mut cmd = Command::new(bin());
    cmd.env(SECRET_VAR, "not-the-secret");
    let e = env.run_with(cmd, &["collect"]);
    assert_ne!(e.code, 0, "{}", e.stdout);
    assert!(
        e.stderr.contains("403") && e.stderr.contains(&format!("${SECRET_VAR}")),
        "{}",
        e.stderr
    );
    assert!(!e.stderr.contains("not-the-secret"), "{}", e.stderr);
    assert_eq!(entries(&env), 0);
    // The right one.
    run(&env, &["collect"]).ok();
    assert!(entries(&env) >= 6);
    let v = run(&env, &["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert!(v["blobs"].as_u64().unwrap() >= 6, "{v}");
    crate::peers::boto3(
        p,
        "keys = [o['Key'] for o in s3.list_objects_v2(Bucket='evidence')['Contents']]\n\
         assert 'aims/sequencer.lease' not in keys, keys\n\
         assert len([k for k in keys if k.startswith('aims/sha256/')]) >= 6, keys",
    );
    // The first checkpoint creates the lease (If-None-Match); a standby is refused.
    run(&env, &["checkpoint"]).ok();
    run(
        &env,
        &["backup", env.path().join("standby").to_str().unwrap()],
    )
    .ok();
    let standby_cfg = standby_config(&env);
    let standby = |args: &[&str]| run_config(&standby_cfg, args);
    let note = env.path().join("note.md");
    std::fs::write(&note, "# Note\n").unwrap();
    standby(&["add", "--control", "A.2.2", note.to_str().unwrap()]).ok();
    let e = standby(&["checkpoint"]);
    assert_ne!(e.code, 0);
    assert!(
        e.stderr.contains("holds the sequencer lease"),
        "{}",
        e.stderr
    );
    // The origin renews it (If-Match on the version it read).
    std::fs::write(env.docs().join("more.md"), "# More\n").unwrap();
    run(&env, &["collect"]).ok();
    run(&env, &["checkpoint"]).ok();

    // Written once, by the store's conditions: an object already under a digest's name (here
    // planted, with other bytes of the same length) is never overwritten by a collect; the
    // planted bytes stay, and verify names the object.
    let doc = b"# Planted later\n";
    let digest = sha256_hex(doc);
    let key = format!("aims/sha256/{}/{digest}", &digest[..2]);
    crate::peers::boto3(
        p,
        &format!("s3.put_object(Bucket='evidence', Key='{key}', Body=b'# Planted LATER\\n')"),
    );
    std::fs::write(env.docs().join("planted.md"), doc).unwrap();
    run(&env, &["collect"]).ok();
    crate::peers::boto3(
        p,
        &format!(
            "got = s3.get_object(Bucket='evidence', Key='{key}')['Body'].read()\n\
             assert got == b'# Planted LATER\\n', got"
        ),
    );
    let v = run(&env, &["verify"]);
    assert_ne!(v.code, 0, "{}", v.stdout);
    assert!(v.stdout.contains(&digest), "{}{}", v.stdout, v.stderr);
    // The conditions themselves, as this store applies them to any client: a create over an
    // existing key and a replace of a version nobody holds are both refused (412).
    crate::peers::boto3(
        p,
        &format!(
            "import botocore\n\
             for extra in ({{'IfNoneMatch': '*'}}, {{'IfMatch': '\"0123\"'}}):\n\
             \x20   try:\n\
             \x20       s3.put_object(Bucket='evidence', Key='{key}', Body=b'x', **extra)\n\
             \x20       raise SystemExit('accepted %r' % extra)\n\
             \x20   except botocore.exceptions.ClientError as e:\n\
             \x20       assert e.response['ResponseMetadata']['HTTPStatusCode'] == 412, e.response"
        ),
    );
}
