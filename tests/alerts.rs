//! Alerts (issue 14): a webhook receiver on loopback and a real SMTP server with STARTTLS
//! (aiosmtpd from PyPI) get one message per transition and one on recovery.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::api::{Server, request, token};
use crate::common::Env;
use crate::daemon::wait_for;

/// A webhook receiver: every POST body it gets, with its path.
struct Receiver {
    port: u16,
    bodies: mpsc::Receiver<(String, serde_json::Value)>,
    /// Messages seen but not yet asked for.
    stash: std::cell::RefCell<Vec<(String, serde_json::Value)>>,
}

fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut raw = Vec::new();
            let mut buf = [0u8; 65536];
            let (head_end, length) = loop {
                let n = c.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..p]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (Some(p), len);
                }
            };
            let Some(p) = head_end else { continue };
            while raw.len() < p + 4 + length {
                let n = c.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let path = String::from_utf8_lossy(&raw[..p])
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let body = serde_json::from_slice(&raw[p + 4..]).unwrap_or(serde_json::Value::Null);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = tx.send((path, body));
        }
    });
    Receiver {
        port,
        bodies: rx,
        stash: Default::default(),
    }
}

impl Receiver {
    /// The next body posted to `path` whose text contains `needle`.
    fn expect(&self, path: &str, needle: &str, secs: u64) -> serde_json::Value {
        let matches = |p: &str, b: &serde_json::Value| p == path && b.to_string().contains(needle);
        let mut stash = self.stash.borrow_mut();
        if let Some(i) = stash.iter().position(|(p, b)| matches(p, b)) {
            return stash.remove(i).1;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.bodies.recv_timeout(left) {
                Ok((p, body)) if matches(&p, &body) => return body,
                Ok(other) => stash.push(other),
                Err(_) => break,
            }
        }
        panic!("no message to {path} containing {needle:?}; got: {stash:?}");
    }

    /// Every message received so far and not asked for.
    fn rest(&self) -> Vec<(String, serde_json::Value)> {
        let mut all = std::mem::take(&mut *self.stash.borrow_mut());
        all.extend(self.bodies.try_iter());
        all
    }
}

#[test]
fn alerts_fire_once_per_transition_and_once_on_recovery() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let admin = token(&env, "ops", "admin");
    let hook = receiver();
    // The Slack URL is a secret: it comes from the environment and must never be logged.
    let slack_path = "/services/T000/B000/s3cr3tw3bh00k";
    let alerts = format!(
        r#"
[[collectors]]
name = "broken"
kind = "command"
program = "sh"
args = ["-c", "test -f ok || {{ echo 'source unreachable' >&2; exit 3; }}"]

[[alerts]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{port}/generic"
on = ["collector", "missing"]
collector_failures = 2
min_interval = "1s"
dashboard_url = "https://evident.example.org/"

[[alerts]]
name = "slack"
kind = "slack"
url_env = "SLACK_WEBHOOK"
on = ["collector"]
collector_failures = 2
min_interval = "1s"
"#,
        port = hook.port
    );
    // Server::start writes the config with the [api] table last; the alerts go before it.
    let base = crate::common::CONFIG.to_owned() + &alerts;
    let slack_url = format!("http://127.0.0.1:{}{slack_path}", hook.port);
    let s = Server::start_with(&env, &base, "", &[("SLACK_WEBHOOK", &slack_url)]);
    let trigger = |name: &str| {
        request(
            s.port,
            "POST",
            &format!("/v1/collectors/{name}/run"),
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        )
        .status
    };

    // The first evaluation: every control without evidence is missing, in one message.
    let first = hook.expect("/generic", "missing", 30);
    assert!(
        first["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "firing")
    );
    assert!(
        first["transitions"]
            .to_string()
            .contains("A.10.4 is missing"),
        "{first}"
    );
    assert_eq!(first["dashboard"], "https://evident.example.org/");

    // Two failed runs in a row: one collector alert, on both targets.
    s.daemon.expect_log("collector failed", 30);
    assert!(wait_for(Duration::from_secs(30), || trigger("broken") == 202));
    let fired = hook.expect("/generic", "collector broken failed 2 runs in a row", 30);
    assert!(fired.to_string().contains("source unreachable"), "{fired}");
    let slack = hook.expect(slack_path, "collector broken failed", 30);
    let text = slack["text"]
        .as_str()
        .expect("a Slack message is {\"text\": …}");
    assert!(
        text.contains("FIRING collector broken failed 2 runs in a row"),
        "{text}"
    );

    // A third failure changes nothing: one alert per transition.
    assert!(wait_for(Duration::from_secs(30), || trigger("broken") == 202));
    s.daemon.expect_log("attempt=3", 30);

    // Recovery: one resolved message.
    std::fs::write(env.path().join("ok"), "").unwrap();
    assert!(wait_for(Duration::from_secs(30), || trigger("broken") == 202));
    let resolved = hook.expect(
        "/generic",
        "\"key\":\"collector:broken\",\"state\":\"resolved\"",
        30,
    );
    let t = resolved["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "collector:broken")
        .unwrap()
        .clone();
    assert_eq!(t["state"], "resolved");
    let fired_again = hook
        .rest()
        .into_iter()
        .filter(|(p, b)| {
            p == "/generic"
                && b.to_string().contains("\"firing\"")
                && b.to_string().contains("collector:broken")
        })
        .count();
    assert_eq!(fired_again, 0, "the collector alert fired twice");

    let (_, _, log) = s.daemon.stop();
    assert!(
        !log.contains("s3cr3tw3bh00k"),
        "the webhook secret reached the log"
    );
    let state = std::fs::read_to_string(env.state().join("alerts-state.json")).unwrap();
    assert!(!state.contains("s3cr3tw3bh00k"));

    // `evident alert test` reaches the target; an unknown name is a usage error.
    let t = env.run(&["alert", "test", "hook"]).ok();
    assert!(t.stderr.contains("accepted"), "{}", t.stderr);
    let test = hook.expect("/generic", "\"transitions\":[]", 10);
    assert_eq!(test["origin"], "test.evident.local/aims");
    let unknown = env.run(&["alert", "test", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("hook, slack"), "{}", unknown.stderr);
}

#[test]
fn alert_email_goes_through_a_real_smtp_server_with_starttls() {
    let peers = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/peers/aiosmtpd/bin/python");
    if !peers.exists() {
        assert!(
            std::env::var("EVIDENT_SKIP_PEERS").is_ok(),
            "aiosmtpd not installed: run ./scripts/peers.sh"
        );
        eprintln!("SKIPPED: aiosmtpd is not installed");
        return;
    }
    let env = Env::new();
    // A private CA and a certificate for 127.0.0.1, made with stock openssl.
    let (_, cert, key) = crate::common::private_ca(env.path());
    let p = |n: &str| env.path().join(n);
    let port = crate::peers::free_port();
    let maildir = p("maildir");
    let mut smtp = Command::new(&peers)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg("--tlscert")
        .arg(&cert)
        .arg("--tlskey")
        .arg(&key)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    std::fs::write(
        env.config(),
        format!(
            "{}\n[[alerts]]\nname = \"oncall-mail\"\nkind = \"email\"\nsmtp = \"127.0.0.1:{port}\"\nfrom = \"evident@example.org\"\nto = [\"compliance@example.org\"]\nca_file = \"ca.pem\"\n",
            crate::common::CONFIG
        ),
    )
    .unwrap();
    let sent = env.run(&["alert", "test", "oncall-mail"]);
    // Without the CA the server's certificate is refused: STARTTLS is checked, not skipped.
    let text = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("ca_file = \"ca.pem\"\n", "");
    std::fs::write(env.config(), text).unwrap();
    let untrusted = env.run(&["alert", "test", "oncall-mail"]);
    let mut mails = Vec::new();
    wait_for(Duration::from_secs(10), || {
        mails = std::fs::read_dir(maildir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        !mails.is_empty()
    });
    let _ = smtp.kill();
    let _ = smtp.wait();
    let sent = sent.ok();
    assert!(sent.stderr.contains("accepted"), "{}", sent.stderr);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("oncall-mail"),
        "{}",
        untrusted.stderr
    );
    assert_eq!(mails.len(), 1, "exactly the trusted message arrived");
    let mail = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(
        mail.contains("Subject: Evident test.evident.local/aims: test message"),
        "{mail}"
    );
    assert!(mail.contains("To: compliance@example.org"), "{mail}");
    assert!(mail.contains("alerts reach this target"), "{mail}");
}

#[test]
fn a_failed_self_verification_and_failed_anchoring_are_alerted() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let ci = token(&env, "ci", "push");
    let hook = receiver();
    // A CA file for the anchoring config; the TSA it would vouch for is never reached.
    crate::common::private_ca(env.path());
    // A TSA that is not there: every anchoring attempt fails.
    let dead = crate::peers::free_port();
    let base = crate::common::CONFIG.replace(
        "origin = \"test.evident.local/aims\"",
        "origin = \"test.evident.local/aims\"\nself_verify = \"2s\"",
    ) + &format!(
        r#"
[anchoring]
tsa_url = "http://127.0.0.1:{dead}/"
ca_file = "ca.pem"

[[alerts]]
name = "integrity"
kind = "webhook"
url = "http://127.0.0.1:{port}/integrity"
on = ["anchoring", "self_verify"]
min_interval = "1s"
"#,
        port = hook.port
    );
    let s = Server::start_with(&env, &base, "", &[]);
    s.daemon.expect_log("collected", 30);
    // A push that waits for its checkpoint makes the daemon sign (and try to anchor) now.
    let pushed = s.post_json(
        "/v1/evidence?wait=checkpoint",
        &ci,
        &serde_json::json!({"uri": "ci://x", "sha256": "ab".repeat(32), "size": 1, "controls": ["A.6.2.4"]}),
    );
    assert_eq!(pushed.status, 201, "{}", pushed.text());
    let anchoring = hook.expect(
        "/integrity",
        "timestamping the newest checkpoint failed",
        30,
    );
    assert_eq!(anchoring["transitions"][0]["event"], "anchoring");
    // Someone edits a leaf under the running daemon: its next self-verification says so.
    env.tamper_db()
        .execute("UPDATE entries SET leaf = CAST(replace(CAST(leaf AS TEXT), 'document', 'documenT') AS BLOB) WHERE idx = 0", [])
        .unwrap();
    let broken = hook.expect("/integrity", "self-verification failed", 30);
    assert_eq!(broken["transitions"][0]["event"], "self_verify");
    s.daemon.expect_log("self-verification FAILED", 10);
}

/// A control that ages past its policy reaches a Teams target as an Adaptive Card, and its
/// recovery waits out the target's `min_interval` rather than following at once.
#[test]
fn a_control_turning_stale_reaches_teams_as_an_adaptive_card_rate_limited() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let admin = token(&env, "ops", "admin");
    let ci = token(&env, "ci", "push");
    let hook = receiver();
    let teams_path = "/workflows/t3amss3cr3t/triggers/manual/paths/invoke";
    let base = crate::common::CONFIG.to_owned()
        + r#"
[controls."A.6.2.6"]
max_age = "3s"
min_items = 1

[[alerts]]
name = "teams"
kind = "teams"
url_env = "TEAMS_WEBHOOK"
on = ["stale"]
min_interval = "8s"
"#;
    let teams_url = format!("http://127.0.0.1:{}{teams_path}", hook.port);
    let s = Server::start_with(&env, &base, "", &[("TEAMS_WEBHOOK", &teams_url)]);
    let push = || {
        let r = s.post_json(
            "/v1/evidence",
            &ci,
            &serde_json::json!({"uri": format!("ci://monitoring/{}", std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()),
                "sha256": "cd".repeat(32), "size": 1, "controls": ["A.6.2.6"]}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    };
    // A collector run is a status change: the daemon evaluates its alerts after it.
    let evaluate = || {
        let r = request(
            s.port,
            "POST",
            "/v1/collectors/docs/run",
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        );
        assert_eq!(r.status, 202, "{}", r.text());
    };
    push();
    std::thread::sleep(Duration::from_millis(3500));
    evaluate();
    let card = hook.expect(teams_path, "FIRING A.6.2.6 is stale", 30);
    let fired_at = std::time::Instant::now();
    assert_eq!(card["type"], "message");
    let attachment = &card["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(
        attachment["content"]["body"][0]["text"],
        "Evident test.evident.local/aims: 1 firing"
    );

    // Fresh evidence clears it; the recovery is held back until eight seconds after the
    // alert, and nothing else reaches Teams (missing controls are not among its events).
    push();
    evaluate();
    let resolved = hook.expect(teams_path, "RESOLVED A.6.2.6 is stale", 30);
    let waited = fired_at.elapsed();
    assert!(
        waited >= Duration::from_secs(7),
        "the recovery came {waited:?} after the alert, inside min_interval"
    );
    assert_eq!(
        resolved["attachments"][0]["content"]["body"][0]["text"],
        "Evident test.evident.local/aims: 1 resolved"
    );
    assert!(hook.rest().is_empty());
    let (_, _, log) = s.daemon.stop();
    assert!(
        !log.contains("t3amss3cr3t"),
        "the Teams URL reached the log"
    );
}
