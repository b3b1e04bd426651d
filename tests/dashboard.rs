//! The dashboard in a real browser: Debian's Chromium driven over WebDriver by Debian's
//! chromedriver. Signs in with a token, checks the DOM at 1280 and 390 pixels, walks the
//! page with the keyboard, runs a collector through a CSRF-protected form, signs out.
//! `EVIDENT_UPDATE_SCREENSHOTS=1` writes the screenshots into docs/img/.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::api::{Server, request, token};
use crate::common::Env;
use crate::daemon::wait_for;

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Option<Browser> {
        if Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("EVIDENT_SKIP_PEERS").is_ok(),
                "chromedriver not installed: run ./scripts/peers.sh (or set EVIDENT_SKIP_PEERS=1 to skip loudly)"
            );
            eprintln!("SKIPPED: chromedriver is not installed");
            return None;
        }
        let port = crate::peers::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars"]
            }
        }}});
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_owned();
        Some(b)
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let a = request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let v = a.json();
        if a.status < 400 {
            Ok(v["value"].clone())
        } else {
            Err(v)
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|v| panic!("{method} {path}: {v}"))
    }

    /// The text of the first element matching `css`, once the page has it (a click's
    /// navigation may still be under way).
    #[track_caller]
    fn text_of(&self, css: &str) -> String {
        let mut out = None;
        let found = wait_for(Duration::from_secs(10), || {
            let Ok(v) = self.try_call(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": css})),
            ) else {
                return false;
            };
            let Some(id) = v
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|i| i.as_str())
            else {
                return false;
            };
            match self.try_call("GET", &self.s(&format!("/element/{id}/text")), None) {
                Ok(t) => {
                    out = t.as_str().map(str::to_owned);
                    true
                }
                Err(_) => false,
            }
        });
        assert!(found, "no {css} on {}", self.url());
        out.unwrap_or_default()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// Waits for the page at a URL with `part` in it (navigation and redirects settle).
    #[track_caller]
    fn expect_url(&self, part: &str) {
        assert!(
            wait_for(Duration::from_secs(10), || self.url().contains(part)),
            "not at {part}: {}",
            self.url()
        );
    }

    fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
    }

    fn find(&self, css: &str) -> String {
        let all = self.find_all(css);
        assert!(!all.is_empty(), "no {css} on {}", self.url());
        all[0].clone()
    }

    fn click(&self, el: &str) {
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/click")),
            Some(json!({})),
        );
    }

    fn type_into(&self, el: &str, text: &str) {
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/value")),
            Some(json!({ "text": text })),
        );
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )
    }

    fn key(&self, key: &str) {
        self.call(
            "POST",
            &self.s("/actions"),
            Some(json!({"actions": [{"type": "key", "id": "kb", "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]})),
        );
    }

    /// The focused element's text (or its value/aria label).
    fn focused(&self) -> String {
        self.script("const e = document.activeElement; return (e.innerText || e.value || e.getAttribute('aria-label') || e.tagName).trim();")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = if std::env::var("EVIDENT_UPDATE_SCREENSHOTS").is_ok() {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/img")
        } else {
            std::env::temp_dir().join("evident-screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// No page wider than the window: nothing to scroll sideways on a phone.
    fn fits(&self) -> bool {
        self.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
            == json!(true)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_dashboard_works_in_a_real_browser_with_keyboard_and_small_screens() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let admin = token(&env, "compliance-lead", "admin");
    let ci = token(&env, "ci", "push");
    let s = Server::start(&env, "");
    s.daemon.expect_log("collected", 30);
    // A pushed title that is HTML must show as text.
    let hostile = "<img src=x onerror=alert(1)> Bias evaluation";
    let pushed = s.post_json(
        "/v1/evidence?wait=checkpoint",
        &ci,
        &json!({"uri": "ci://evals/1", "sha256": "ab".repeat(32), "size": 10, "controls": ["A.6.2.4"], "title": hostile, "source": "gha"}),
    );
    assert_eq!(pushed.status, 201, "{}", pushed.text());
    let pushed_index = pushed.json()["entries"][0]["index"].as_u64().unwrap();
    let Some(b) = Browser::start() else { return };
    let base = s.url();

    // Signed out, every page leads to the sign-in form.
    b.go(&format!("{base}/gaps"));
    b.expect_url("/login?next=/gaps");
    let field = b.find("#token");
    b.type_into(&field, "evd_000000000000_wrong");
    b.click(&b.find("form.login button"));
    assert!(b.text_of("p.error").contains("not valid"));
    let field = b.find("#token");
    b.type_into(&field, &admin);
    b.click(&b.find("form.login button"));
    b.expect_url("/gaps");
    assert!(b.text_of("h1").contains("Stale and missing"));

    // The overview: one cell per control and clause, coloured and labelled by status.
    b.go(&format!("{base}/"));
    let cov = s.get("/v1/coverage", Some(&admin)).json();
    let controls = cov["controls"].as_array().unwrap();
    assert_eq!(b.find_all("a.cell").len(), controls.len());
    let fresh = controls.iter().filter(|c| c["status"] == "fresh").count();
    assert_eq!(b.find_all("a.cell.fresh").len(), fresh);
    assert!(fresh > 0);
    assert!(b.fits(), "the overview scrolls sideways at 1280 px");
    b.screenshot("dashboard-overview-1280");

    // Keyboard: the skip link comes first, then the navigation, in reading order.
    b.go(&format!("{base}/"));
    b.key("\u{E004}");
    assert_eq!(b.focused(), "Skip to content");
    b.key("\u{E004}");
    assert_eq!(b.focused(), "Evident");
    b.key("\u{E004}");
    assert_eq!(b.focused(), "Overview");
    b.key("\u{E004}");
    assert_eq!(b.focused(), "Gaps");
    b.key("\u{E007}"); // Enter follows the link
    b.expect_url("/gaps");

    // A control page: the pushed evidence, its title as text, linked to its entry.
    b.go(&format!("{base}/controls/A.6.2.4"));
    assert!(b.text_of("h1").starts_with("A.6.2.4"));
    assert!(
        b.find_all("main img").is_empty(),
        "a pushed title became markup"
    );
    let page = b.text_of("main");
    assert!(page.contains(hostile), "{page}");
    b.click(&b.find(&format!("a[href='/entries/{pushed_index}']")));
    b.expect_url(&format!("/entries/{pushed_index}"));
    let receipt = b.text_of("pre.receipt");
    assert!(receipt.starts_with("c2sp.org/tlog-proof@v1"), "{receipt}");
    assert!(b.text_of("main").contains("pushed by token ci"));
    assert!(b.text_of("ol.steps").contains("sha256sum"));
    b.screenshot("dashboard-entry-1280");

    // A phone: the same pages without sideways scrolling.
    b.resize(390, 844);
    for path in [
        "/",
        "/gaps",
        "/controls/A.6.2.4",
        &format!("/entries/{pushed_index}"),
        "/collectors",
        "/audit",
    ] {
        b.go(&format!("{base}{path}"));
        assert!(b.fits(), "{path} scrolls sideways at 390 px");
    }
    b.go(&format!("{base}/"));
    b.screenshot("dashboard-overview-390");
    b.resize(1280, 900);

    // Collectors: an admin starts a run with the page's form (it carries the CSRF token).
    b.go(&format!("{base}/collectors"));
    assert!(b.text_of("table.list").contains("docs"));
    b.screenshot("dashboard-collectors-1280");
    b.click(&b.find("form[action='/collectors/docs/run'] button"));
    let mut notice = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            notice = b.text_of("p.notice");
            notice.contains("started") || notice.contains("running")
        }),
        "{notice}"
    );
    // The same form without the CSRF token is refused.
    b.script("document.querySelector(\"form[action='/collectors/docs/run'] input[name=csrf]\").value = 'forged';");
    b.click(&b.find("form[action='/collectors/docs/run'] button"));
    assert!(
        wait_for(Duration::from_secs(10), || b
            .text_of("main")
            .contains("The form expired")),
        "a forged CSRF token was not refused: {}",
        b.text_of("main")
    );

    b.go(&format!("{base}/audit"));
    assert!(b.text_of("h1").contains("Auditor view"));
    assert_eq!(
        b.find_all("table.list tbody tr").len(),
        38,
        "the SoA lists every Annex A control"
    );
    b.screenshot("dashboard-audit-1280");

    // Signing out ends the session.
    b.go(&format!("{base}/"));
    b.click(&b.find("form.who button"));
    b.expect_url("/login");
    b.go(&format!("{base}/audit"));
    b.expect_url("/login?next=/audit");

    // Every page answered with the strict policy.
    let page = request(s.port, "GET", "/login", &[], b"");
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("style-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
}
