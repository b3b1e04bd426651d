//! Real peer servers (MLflow, Buildbot) and the vendor-shaped forge fixture, started on
//! 127.0.0.1 with free ports for one test and stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/peers.sh` installed the servers.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("EVIDENT_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers"))
}

/// The venv of peer `name`, or `None` (with a loud message) when `EVIDENT_SKIP_PEERS=1`.
/// Without that variable a missing peer fails the test: CI must install them.
pub fn peer(name: &str) -> Option<PathBuf> {
    let dir = peers_dir().join(name);
    if dir.join("bin").exists() {
        return Some(dir);
    }
    if std::env::var("EVIDENT_SKIP_PEERS").as_deref() == Ok("1")
        && std::env::var("CI").as_deref() != Ok("true")
    {
        eprintln!("\n*** SKIPPED: real {name} server not installed and EVIDENT_SKIP_PEERS=1 ***\n");
        return None;
    }
    panic!(
        "real {name} server not installed in {}: run ./scripts/peers.sh (or set EVIDENT_SKIP_PEERS=1 to skip loudly)",
        dir.display()
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; returns (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    try_http(port, method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn json(port: u16, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, text) = http(port, method, path, Some(&body));
    assert!(
        (200..300).contains(&status),
        "{method} {path} -> {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn wait_until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not become ready within {deadline:?}");
}

fn answers(port: u16, path: &str) -> bool {
    matches!(try_http(port, "GET", path, None), Ok((200, _)))
}

/// A child process group, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    Server {
        child,
        port,
        _dir: dir,
    }
}

/// A real MLflow tracking server with a fresh SQLite registry.
pub fn mlflow() -> Option<Server> {
    let venv = peer("mlflow")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(venv.join("bin/mlflow"));
    cmd.args([
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--workers",
        "1",
    ])
    .arg("--backend-store-uri")
    .arg(format!("sqlite:///{}/mlflow.db", dir.path().display()))
    .arg("--default-artifact-root")
    .arg(dir.path().join("artifacts"))
    .env("MLFLOW_DISABLE_TELEMETRY", "true")
    .env("DO_NOT_TRACK", "true");
    let s = spawn(cmd, port, dir);
    wait_until("mlflow", Duration::from_secs(90), || {
        answers(port, "/health")
    });
    Some(s)
}

/// A real Buildbot master with one local worker and the given builders, each running a shell
/// command: `(name, command)`.
pub fn buildbot(builders: &[(&str, &str)]) -> Option<(Server, Server)> {
    let venv = peer("buildbot")?;
    let dir = tempfile::tempdir().unwrap();
    let (www, pb) = (free_port(), free_port());
    let master = dir.path().join("master");
    let st = Command::new(venv.join("bin/buildbot"))
        .args(["create-master", "-r"])
        .arg(&master)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "create-master: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let names: Vec<String> = builders.iter().map(|(n, _)| format!("{n:?}")).collect();
    let mut cfg = format!(
        "from buildbot.plugins import *\nc = BuildmasterConfig = {{}}\n\
c['workers'] = [worker.Worker('w1', 'pass')]\n\
c['protocols'] = {{'pb': {{'port': 'tcp:{pb}:interface=127.0.0.1'}}}}\n\
c['www'] = dict(port='tcp:{www}:interface=127.0.0.1', plugins={{}})\n\
c['db'] = {{'db_url': 'sqlite:///state.sqlite'}}\n\
c['buildbotNetUsageData'] = None\nc['title'] = 'evident-test'\nc['buildbotURL'] = 'http://127.0.0.1:{www}/'\n\
c['schedulers'] = [schedulers.ForceScheduler(name='force', builderNames=[{}])]\nc['builders'] = []\n",
        names.join(", ")
    );
    for (n, command) in builders {
        cfg.push_str(&format!(
            "f = util.BuildFactory()\nf.addStep(steps.ShellCommand(name='run', command=['sh', '-c', {command:?}]))\n\
c['builders'].append(util.BuilderConfig(name={n:?}, workernames=['w1'], factory=f, tags=['ml']))\n"
        ));
    }
    std::fs::write(master.join("master.cfg"), cfg).unwrap();
    let mut m = Command::new(venv.join("bin/twistd"));
    m.current_dir(&master).args([
        "--nodaemon",
        "--no_save",
        "--pidfile=",
        "-y",
        "buildbot.tac",
    ]);
    let master_srv = spawn(m, www, dir);
    wait_until("buildbot master", Duration::from_secs(60), || {
        answers(www, "/api/v2/builders")
    });
    let wdir = tempfile::tempdir().unwrap();
    let wpath = wdir.path().join("worker");
    let st = Command::new(venv.join("bin/buildbot-worker"))
        .args(["create-worker", "-r"])
        .arg(&wpath)
        .args([&format!("127.0.0.1:{pb}"), "w1", "pass"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "create-worker: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut w = Command::new(venv.join("bin/twistd"));
    w.current_dir(&wpath).args([
        "--nodaemon",
        "--no_save",
        "--pidfile=",
        "-y",
        "buildbot.tac",
    ]);
    let worker_srv = spawn(w, pb, wdir);
    wait_until("buildbot worker", Duration::from_secs(60), || {
        let (_, body) = http(www, "GET", "/api/v2/workers", None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["workers"][0]["connected_to"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    Some((master_srv, worker_srv))
}

/// Forces a build of builder `id` and waits until the master has `total` complete builds.
pub fn buildbot_force(port: u16, builder_id: u64, total: usize) {
    json(
        port,
        "POST",
        "/api/v2/forceschedulers/force",
        serde_json::json!({"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderid": builder_id.to_string(), "reason": "test", "owner": "t"}}),
    );
    wait_until("buildbot build", Duration::from_secs(60), || {
        let (_, body) = http(port, "GET", "/api/v2/builds?complete=true", None);
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["builds"].as_array().map(|a| a.len()))
            .unwrap_or(0)
            >= total
    });
}

/// The vendor-shaped fixture (`tests/fixtures/forge_server.py`).
pub fn forge(args: &[&str]) -> Server {
    fixture("forge_server.py", args)
}

/// A Python fixture from `tests/fixtures` that prints `PORT <n>` once listening.
pub fn fixture(name: &str, args: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("fixture {name} said {line:?}"));
    Server {
        child,
        port,
        _dir: dir,
    }
}

/// A real WsgiDAV server over a fresh folder, with basic auth `user`/`password`.
pub fn wsgidav(user: &str, password: &str) -> Option<Server> {
    let venv = peer("wsgidav")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let cfg = format!(
        "host: 127.0.0.1\nport: {port}\nserver: cheroot\nverbose: 1\n\
provider_mapping: {{\"/\": \"{}\"}}\n\
http_authenticator: {{domain_controller: null, accept_basic: true, accept_digest: false, default_to_digest: false}}\n\
simple_dc: {{user_mapping: {{\"*\": {{\"{user}\": {{password: \"{password}\"}}}}}}}}\n",
        root.display()
    );
    std::fs::write(dir.path().join("wsgidav.yaml"), cfg).unwrap();
    let mut cmd = Command::new(venv.join("bin/wsgidav"));
    cmd.arg("--config").arg(dir.path().join("wsgidav.yaml"));
    let s = spawn(cmd, port, dir);
    wait_until("wsgidav", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Some(s)
}

/// A request with basic auth and a raw body; returns the status.
pub fn dav(port: u16, auth: &str, method: &str, path: &str, body: &[u8]) -> u16 {
    use base64::Engine as _;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cred = base64::engine::general_purpose::STANDARD.encode(auth);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {cred}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A real moto S3 server (in memory).
pub fn moto() -> Option<Server> {
    let venv = peer("moto")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(venv.join("bin/moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let s = spawn(cmd, port, dir);
    wait_until("moto", Duration::from_secs(60), || answers(port, "/"));
    Some(s)
}

/// The second S3 implementation: s3s-fs (crates.io), which checks SigV4 signatures against
/// its one key pair (`AKIDTEST` / `test-secret-key`) and honours conditional writes.
pub fn s3s() -> Option<Server> {
    let dir = peer("s3s")?;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = free_port();
    let mut cmd = Command::new(dir.join("bin/s3s-fs"));
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--access-key",
            "AKIDTEST",
            "--secret-key",
            "test-secret-key",
        ])
        .arg(&data);
    let s = spawn(cmd, port, root);
    // Every request needs a signature here: wait for the port, not for an answer.
    wait_until("s3s-fs", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Some(s)
}

/// Runs Python with boto3 (from the moto venv) against the S3 server at `port`; the
/// snippet sees a client named `s3`.
pub fn boto3(port: u16, snippet: &str) {
    let py = peers_dir().join("moto/bin/python");
    let code = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', aws_access_key_id='AKIDTEST', aws_secret_access_key='test-secret-key')\n{snippet}\n"
    );
    let out = Command::new(py).arg("-c").arg(code).output().unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real Redmine from Debian (set up by `scripts/peers.sh`) on a free port, and the
/// admin's API key.
pub fn redmine() -> Option<(Server, String)> {
    let key_file = peers_dir().join("redmine/api-key");
    let Ok(key) = std::fs::read_to_string(&key_file) else {
        if std::env::var("EVIDENT_SKIP_PEERS").as_deref() == Ok("1") {
            eprintln!("\n*** SKIPPED: real Redmine not set up and EVIDENT_SKIP_PEERS=1 ***\n");
            return None;
        }
        panic!(
            "Redmine is not set up ({} missing): run ./scripts/peers.sh as root",
            key_file.display()
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new("bin/rails");
    cmd.current_dir("/usr/share/redmine")
        .args([
            "server",
            "-e",
            "production",
            "-b",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
        ])
        .arg(dir.path().join("server.pid"));
    let s = spawn(cmd, port, dir);
    wait_until("redmine", Duration::from_secs(90), || {
        matches!(try_http(port, "GET", "/login", None), Ok((200, _)))
    });
    Some((s, key.trim().to_owned()))
}

/// A Redmine REST call with the API key.
pub fn redmine_api(
    port: u16,
    key: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, String) {
    // Debian's Redmine keeps its data in SQLite, which several tests' servers share: a write
    // that meets another's lock fails whole with a 500 (the request's transaction rolls
    // back), so it is safe to send again.
    let mut answer = redmine_once(port, key, method, path, &body);
    for _ in 0..3 {
        if answer.0 < 500 {
            break;
        }
        eprintln!(
            "redmine answered {method} {path} with {}; sending it again",
            answer.0
        );
        std::thread::sleep(Duration::from_secs(1));
        answer = redmine_once(port, key, method, path, &body);
    }
    answer
}

fn redmine_once(
    port: u16,
    key: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let payload = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Redmine-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

/// Python's own static file server over `root` (as a web server serves published tiles).
pub fn static_files(root: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(root)
        .arg(port.to_string());
    let server = spawn(cmd, port, dir);
    wait_until("python3 -m http.server", Duration::from_secs(20), || {
        answers(port, "/checkpoint")
    });
    server
}
