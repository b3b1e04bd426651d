//! Issue 11, item 3: credentials stay out of every log line, the ledger, its blobs and
//! exports, whatever encoding a hostile server echoes them back in.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};

use crate::common::{Env, assert_absent, bin, state_bytes};
use crate::peers::fixture;

/// (collector TOML, env var, token, basic-auth user).
fn collectors(port: u16) -> Vec<(String, &'static str, &'static str, Option<&'static str>)> {
    let base = format!("http://127.0.0.1:{port}");
    vec![
        (
            format!(
                "name = \"gh\"\nkind = \"github_actions\"\nrepo = \"acme/model\"\napi_url = \"{base}/json\"\ntoken_env = \"T_GH\""
            ),
            "T_GH",
            "ghp_Echo/Bearer+Tok3n=",
            None,
        ),
        (
            format!(
                "name = \"hub\"\nkind = \"huggingface\"\nauthor = \"acme\"\napi_url = \"{base}/json\"\ntoken_env = \"T_HF\""
            ),
            "T_HF",
            "hf_EchoHubT0ken/xyz+",
            None,
        ),
        (
            format!(
                "name = \"gl\"\nkind = \"gitlab_ci\"\nproject = \"ml/model\"\napi_url = \"{base}/json\"\ntoken_env = \"T_GL\""
            ),
            "T_GL",
            "glpat-EchoPrivate/Tok+en",
            None,
        ),
        (
            format!(
                "name = \"jira\"\nkind = \"jira\"\nurl = \"{base}/json\"\nprojects = [\"AIGOV\"]\ndeployment = \"cloud\"\nemail = \"bot@acme.example\"\ntoken_env = \"T_JIRA\""
            ),
            "T_JIRA",
            "ATATT3xEchoJira/Cloud+Tok=",
            Some("bot@acme.example"),
        ),
        (
            format!(
                "name = \"wiki\"\nkind = \"confluence\"\nurl = \"{base}/json/wiki\"\nspaces = [\"AIMS\"]\ndeployment = \"cloud\"\nemail = \"wiki@acme.example\"\ntoken_env = \"T_CONF\""
            ),
            "T_CONF",
            "ATATT3xEchoConfluence/Tok+=",
            Some("wiki@acme.example"),
        ),
        (
            format!(
                "name = \"dav\"\nkind = \"webdav\"\nurl = \"{base}/html/dav/\"\nuser = \"evident\"\ntoken_env = \"T_DAV\""
            ),
            "T_DAV",
            "EchoDavAppPassw0rd/x+y",
            Some("evident"),
        ),
        (
            format!(
                "name = \"rm\"\nkind = \"redmine\"\nurl = \"{base}/html/\"\ntoken_env = \"T_RM\""
            ),
            "T_RM",
            "EchoRedmineApiKey0123456789abcdef",
            None,
        ),
        (
            format!(
                "name = \"s3\"\nkind = \"s3\"\nbucket = \"evidence\"\nregion = \"us-east-1\"\nendpoint = \"{base}/xml\"\naccess_key_id = \"AKIAECHOTEST\"\ntoken_env = \"T_S3\""
            ),
            "T_S3",
            "EchoS3Secret/Key+wJalrXUtnFEMI",
            None,
        ),
        (
            format!(
                "name = \"jk\"\nkind = \"jenkins\"\nurl = \"{base}/text/\"\njobs = [\"release\"]\nuser = \"bot\"\ntoken_env = \"T_JK\""
            ),
            "T_JK",
            "EchoJenkinsApiT0ken/abc+",
            Some("bot"),
        ),
    ]
}

/// Every form of a token a leak could take.
fn needles(token: &str, user: Option<&str>) -> Vec<Vec<u8>> {
    let mut n = vec![token.as_bytes().to_vec()];
    let mut plain = vec![token.to_owned()];
    if let Some(u) = user {
        plain.push(format!("{u}:{token}"));
    }
    for p in plain {
        for e in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE] {
            // A leak of the first 16 characters is a leak.
            n.push(e.encode(&p).as_bytes()[..16].to_vec());
        }
    }
    n.push(token.replace('/', "%2F").replace('+', "%2B").into_bytes());
    n.push(token.as_bytes()[..12].to_vec());
    n
}

#[test]
fn echoed_credentials_never_reach_logs_ledger_blobs_or_exports() {
    let server = fixture("echo_server.py", &[]);
    let env = Env::new();
    let cs = collectors(server.port);
    let mut cfg = std::fs::read_to_string(env.config()).unwrap();
    for (c, ..) in &cs {
        cfg.push_str(&format!("\n[[collectors]]\n{c}\ntimeout = \"10s\"\n"));
    }
    std::fs::write(env.config(), cfg).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(bin());
        for (_, var, tok, _) in &cs {
            cmd.env(var, tok);
        }
        cmd.env("EVIDENT_LOG", "trace");
        env.run_with(cmd, args)
    };
    run(&["init"]).ok();
    let collect = run(&["-vvv", "collect"]);
    assert_eq!(
        collect.code, 1,
        "every remote collector fails: {}",
        collect.stderr
    );
    let sig = regex::Regex::new("Signature=[0-9a-f]{16}").unwrap();
    let mut all = Vec::new();
    for (c, _, tok, user) in &cs {
        let name = c.split('"').nth(1).unwrap();
        // The run failed and says what the server answered, but never what it echoed.
        assert!(collect.stderr.contains(name), "{name}: {}", collect.stderr);
        all.extend(needles(tok, *user));
    }
    assert!(collect.stderr.contains("HTTP 401"), "{}", collect.stderr);
    assert!(
        collect.stderr.contains("AccessDenied"),
        "{}",
        collect.stderr
    );
    assert_absent("collect's stderr", collect.stderr.as_bytes(), &all);
    assert!(!sig.is_match(&collect.stderr), "{}", collect.stderr);
    assert!(collect.stderr.contains("Basic ****"), "{}", collect.stderr);

    // `status`-like reads and a daemon-free checkpoint and export.
    run(&["checkpoint"]).ok();
    let out = env.path().join("b.tar.gz");
    run(&["export", "--out", out.to_str().unwrap()]).ok();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap()),
        &mut tar,
    )
    .unwrap();
    assert_absent("the export", &tar, &all);
    assert!(!sig.is_match(&String::from_utf8_lossy(&tar)));
    let q = run(&["-vvv", "query", "--format", "json"]);
    assert_absent("query output", q.stdout.as_bytes(), &all);
    for (path, bytes) in state_bytes(&env.state()) {
        assert_absent(&path.display().to_string(), &bytes, &all);
        assert!(
            !sig.is_match(&String::from_utf8_lossy(&bytes)),
            "{}",
            path.display()
        );
    }
}
