//! Collectors of systems that cannot run here (GitHub, GitLab, Jenkins, the Hugging Face
//! Hub) against `tests/fixtures/forge_server.py`, which pages, limits and fails the way each
//! vendor documents; the `command` collector against real programs.

use std::time::Instant;

use serde_json::{Value, json};

use crate::collectors::{collect, content, entries, env_with};
use crate::common::Env;
use crate::peers::{self, http};

fn admin(port: u16, what: &str, body: Value) -> Value {
    peers::json(port, "POST", &format!("/_admin/{what}"), body)
}

fn requests(port: u16) -> Value {
    serde_json::from_str(&http(port, "GET", "/_admin/requests", None).1).unwrap()
}

fn github_env(port: u16, extra: &str) -> Env {
    env_with(&format!(
        "[[collectors]]\nname = \"gh\"\nkind = \"github_actions\"\nrepo = \"o/r\"\napi_url = \"http://127.0.0.1:{port}\"\ntoken_env = \"EVIDENT_TEST_GH\"\n{extra}"
    ))
}

fn run_gh(env: &Env, args: &[&str]) -> (crate::common::Run, Value) {
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_GH", "ghp_test_secret_123");
    let mut a = vec!["--format", "json", "collect"];
    a.extend_from_slice(args);
    let r = env.run_with(cmd, &a);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", r.stdout, r.stderr));
    (r, v["collectors"][0].clone())
}

#[test]
fn github_actions_pages_etags_and_mapping() {
    let f = peers::forge(&["--github-token", "ghp_test_secret_123"]);
    let p = f.port;
    admin(p, "github/runs", json!({"count": 150, "name": "CI"}));
    admin(
        p,
        "github/runs",
        json!({"count": 40, "name": "Model evaluation", "conclusion": "failure"}),
    );
    admin(
        p,
        "github/runs",
        json!({"count": 10, "name": "Deploy", "jobs": 1, "artifacts": 0}),
    );
    admin(
        p,
        "github/runs",
        json!({"count": 3, "name": "CI", "status": "in_progress"}),
    );
    let env = github_env(p, "");
    let (r, s) = run_gh(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 200, "{s}");
    // 203 runs = 3 pages of 100; jobs and artifacts once per completed run; nothing more.
    let req = requests(p);
    assert_eq!(req["by_path"]["/repos/o/r/actions/runs"], 3, "{req}");
    assert_eq!(
        req["by_path"]["/repos/o/r/actions/runs/N/attempts/N/jobs"], 200,
        "{req}"
    );
    assert_eq!(
        req["by_path"]["/repos/o/r/actions/runs/N/artifacts"], 200,
        "{req}"
    );
    assert_eq!(s["requests"], 403, "{s}");
    let e = entries(&env, "ci_run");
    let by_name = |n: &str| e.iter().filter(|(u, _)| u.contains(n)).count();
    assert_eq!(by_name("/actions/runs/"), 200);
    let eval: Vec<_> = e.iter().filter(|(_, c)| c == "A.6.2.4").collect();
    assert_eq!(
        eval.len(),
        40,
        "evaluation runs map to A.6.2.4 even when they failed"
    );
    assert_eq!(e.iter().filter(|(_, c)| c == "A.6.2.5").count(), 10);
    assert_eq!(
        e.iter().filter(|(_, c)| c == "A.6.1.3,A.6.2.8").count(),
        150
    );
    let first = &e.iter().find(|(_, c)| c == "A.6.2.4").unwrap().0;
    let rec = content(&env, first);
    assert_eq!(rec["run"]["conclusion"], "failure");
    assert_eq!(rec["jobs"][0]["steps"][1]["name"], "Run tests");
    assert!(
        rec["artifacts"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{rec}"
    );
    for (path, bytes) in crate::common::state_bytes(&env.state()) {
        crate::common::assert_absent(
            &path.display().to_string(),
            &bytes,
            &[b"ghp_test_secret_123".to_vec()],
        );
    }

    // Unchanged: three conditional requests, all 304, free of quota.
    let (_, s) = run_gh(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    assert_eq!(requests(p)["not_modified"], 3);

    // A re-run of one run and a new run: exactly two entries, details fetched for two runs.
    let id = admin(p, "github/runs", json!({"count": 1, "name": "CI"}))["ids"][0]
        .as_u64()
        .unwrap();
    admin(
        p,
        "github/update",
        json!({"id": id - 100, "rerun": true, "conclusion": "success"}),
    );
    let (_, s) = run_gh(&env, &[]);
    assert_eq!(s["new"], 2, "{s}");
    assert_eq!(s["requests"], 3 + 4, "{s}");
    // --full ignores the ETags and markers, and still records nothing twice.
    let (_, s) = run_gh(&env, &["--full"]);
    assert_eq!(s["new"], 0, "{s}");
    env.run(&["verify"]).ok();
}

#[test]
fn github_quota_workflow_filter_and_replace_rules() {
    let f = peers::forge(&[]);
    let p = f.port;
    admin(
        p,
        "github/runs",
        json!({"count": 5, "name": "nightly eval"}),
    );
    admin(p, "github/runs", json!({"count": 5, "name": "CI"}));
    let env = github_env(
        p,
        "workflows = [\"nightly-eval.yml\"]\n\n[[rules]]\nmatch = { kind = \"ci_run\", title = \"^nightly\" }\ncontrols = [\"A.6.2.6\"]\nreplace = true\n",
    );
    // Quota for 3 more requests: the listing and one run's details, then GitHub says no.
    admin(p, "quota", json!({"remaining": 3, "reset_in": 3600}));
    let (r, s) = run_gh(&env, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(s["new"], 1, "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("rate limit is exhausted"),
        "{s}"
    );
    admin(p, "quota", json!({"remaining": 5000}));
    let (r, s) = run_gh(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 4, "{s}");
    let e = entries(&env, "ci_run");
    assert_eq!(e.len(), 5);
    assert!(
        e.iter().all(|(_, c)| c == "A.6.2.6"),
        "replace rule drops the A.6.2.4 default: {e:?}"
    );
}

#[test]
fn gitlab_pipelines_jobs_and_cursor() {
    let f = peers::forge(&["--gitlab-token", "glpat-secret"]);
    let p = f.port;
    admin(
        p,
        "gitlab/pipelines",
        json!({"count": 120, "jobs": ["lint", "build"]}),
    );
    admin(
        p,
        "gitlab/pipelines",
        json!({"count": 5, "jobs": ["evaluate", "deploy"], "status": "failed"}),
    );
    let running = admin(
        p,
        "gitlab/pipelines",
        json!({"count": 1, "status": "running"}),
    )["ids"][0]
        .as_u64()
        .unwrap();
    let env = env_with(&format!(
        "[[collectors]]\nname = \"gl\"\nkind = \"gitlab_ci\"\nproject = \"group/project\"\napi_url = \"http://127.0.0.1:{p}\"\ntoken_file = \"gl-token\"\n"
    ));
    std::fs::write(env.path().join("gl-token"), "glpat-secret\n").unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 125, "{s}");
    let req = requests(p);
    assert_eq!(
        req["by_path"]["/api/v4/projects/group%2Fproject/pipelines"], 2,
        "{req}"
    );
    let e = entries(&env, "ci_run");
    assert_eq!(e.iter().filter(|(_, c)| c == "A.6.2.4,A.6.2.5").count(), 5);
    let (_, s) = collect(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(1)),
        "cursor: one page of nothing: {s}"
    );
    admin(
        p,
        "gitlab/update",
        json!({"id": running, "status": "success"}),
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 1, "{s}");
    // A wrong token is a clear, fatal error naming the setting.
    std::fs::write(env.path().join("gl-token"), "glpat-wrong").unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 1);
    let msg = s["error"].as_str().unwrap();
    assert!(
        msg.contains("401") && msg.contains("gl-token (token_file)") && msg.contains("read_api"),
        "{msg}"
    );
    assert!(!r.stderr.contains("glpat-wrong") && !msg.contains("glpat-wrong"));

    // Issue 12, item 11: under systemd, `LoadCredential=tokens:/etc/evident/credentials`
    // hands the directory's files over as `$CREDENTIALS_DIRECTORY/tokens_<file>`; the bare
    // `token_file = "gl-token"` finds it there.
    std::fs::remove_file(env.path().join("gl-token")).unwrap();
    let creds = env.path().join("run-credentials-evident.service");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("tokens_gl-token"), "glpat-secret\n").unwrap();
    std::fs::write(creds.join("tokens_other-token"), "unrelated\n").unwrap();
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("CREDENTIALS_DIRECTORY", &creds);
    let r = env.run_with(cmd, &["--format", "json", "collect"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // And a missing credential names the path it was looked for under.
    std::fs::remove_file(creds.join("tokens_gl-token")).unwrap();
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("CREDENTIALS_DIRECTORY", &creds);
    let r = env.run_with(cmd, &["collect"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("run-credentials-evident.service/gl-token (token_file)"),
        "{}",
        r.stderr
    );
}

#[test]
fn jenkins_builds_folders_and_running_builds() {
    let f = peers::forge(&["--jenkins-auth", "ci-bot:jenkins-token"]);
    let p = f.port;
    admin(
        p,
        "jenkins/builds",
        json!({"job": "ml/model-eval", "count": 130}),
    );
    admin(
        p,
        "jenkins/builds",
        json!({"job": "ml/model-eval", "count": 1, "building": true}),
    );
    admin(
        p,
        "jenkins/builds",
        json!({"job": "ml/model-eval", "count": 2, "result": "UNSTABLE"}),
    );
    admin(
        p,
        "jenkins/builds",
        json!({"job": "release", "count": 3, "result": "FAILURE"}),
    );
    let env = env_with(&format!(
        "[[collectors]]\nname = \"jk\"\nkind = \"jenkins\"\nurl = \"http://127.0.0.1:{p}/\"\njobs = [\"ml/model-eval\", \"release\"]\nuser = \"ci-bot\"\ntoken_env = \"EVIDENT_TEST_JK\"\n"
    ));
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_JK", "jenkins-token");
    let r = env.run_with(cmd, &["--format", "json", "collect"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e = entries(&env, "ci_run");
    assert_eq!(e.len(), 135);
    assert_eq!(e.iter().filter(|(_, c)| c == "A.6.2.5").count(), 3);
    let rec = content(
        &env,
        &format!("jenkins://127.0.0.1:{p}/ml/model-eval/builds/133"),
    );
    assert_eq!(rec["result"], "UNSTABLE");
    assert_eq!(rec["tests"]["failed"], 1);
    assert_eq!(rec["causes"][0]["userId"], "admin");
    admin(
        p,
        "jenkins/finish",
        json!({"job": "ml/model-eval", "number": 131}),
    );
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_JK", "jenkins-token");
    let r = env.run_with(cmd, &["--format", "json", "collect"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["collectors"][0]["new"], 1, "{}", r.stdout);
}

#[test]
fn huggingface_models_cards_and_datasets() {
    let f = peers::forge(&[]);
    let p = f.port;
    let card = "---\nlicense: mit\n---\n# Fraud scorer\nIntended use: card fraud.\n";
    admin(
        p,
        "hf/repo",
        json!({"id": "acme/fraud-scorer", "tags": ["text-classification", "iso42001:A.9.3"], "card": card}),
    );
    admin(p, "hf/repo", json!({"id": "acme/no-card"}));
    // 102 models: the listing takes two pages of 100 (Link header with a cursor).
    for i in 0..100 {
        admin(p, "hf/repo", json!({"id": format!("acme/m-{i:03}")}));
    }
    admin(
        p,
        "hf/repo",
        json!({"type": "dataset", "id": "acme/transactions", "tags": ["source_datasets:original", "annotations_creators:expert-generated"], "card": "# Transactions\n"}),
    );
    let env = env_with(&format!(
        "[[collectors]]\nname = \"hub\"\nkind = \"huggingface\"\nauthor = \"acme\"\napi_url = \"http://127.0.0.1:{p}\"\n"
    ));
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 105, "{s}");
    assert_eq!(requests(p)["by_path"]["/api/models"], 2);
    let cards = entries(&env, "model_card");
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].1, "A.6.2.7,A.8.2,A.9.3");
    assert_eq!(
        entries(&env, "dataset_card")[0].1,
        "A.7.2,A.7.3,A.7.5,A.7.6"
    );
    let info = content(
        &env,
        &format!("hf://127.0.0.1:{p}/models/acme/fraud-scorer"),
    );
    assert_eq!(info["license"], "apache-2.0");
    let (_, s) = collect(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    admin(
        p,
        "hf/repo",
        json!({"id": "acme/fraud-scorer", "tags": ["text-classification", "iso42001:A.9.3"], "card": format!("{card}\nv2\n")}),
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 2, "new revision: info and card: {s}");
}

/// Every bad answer, to every API collector kind: a clear error on the collector that got it,
/// retries where they help, nothing partial recorded, no secret shown, and the healthy
/// collector beside it neither failed nor delayed.
#[test]
fn bad_answers_fail_clearly_and_touch_nothing_else() {
    let f = peers::forge(&[]);
    let p = f.port;
    admin(p, "github/runs", json!({"count": 2, "name": "CI"}));
    // `API` stands for the fixture's URL: each kind gets a fixture of its own, since faults
    // are fixture-wide, and the kinds run side by side.
    let api = "API";
    // Each kind, and what it says of a 200 with a broken JSON body.
    let json_bad = "is not the JSON expected";
    let kinds = [
        (
            format!("kind = \"github_actions\"\nrepo = \"o/r\"\napi_url = \"{api}\""),
            json_bad,
        ),
        (
            format!("kind = \"gitlab_ci\"\nproject = \"42\"\napi_url = \"{api}\""),
            json_bad,
        ),
        (
            format!("kind = \"jenkins\"\nurl = \"{api}\"\njobs = [\"ml/eval\"]"),
            json_bad,
        ),
        (
            format!("kind = \"huggingface\"\nauthor = \"acme\"\napi_url = \"{api}\""),
            json_bad,
        ),
        (format!("kind = \"mlflow\"\nurl = \"{api}\""), json_bad),
        (format!("kind = \"buildbot\"\nurl = \"{api}\""), json_bad),
        (
            format!("kind = \"github_issues\"\nrepo = \"o/r\"\napi_url = \"{api}\""),
            json_bad,
        ),
        (
            format!("kind = \"gitlab_issues\"\nproject = \"42\"\napi_url = \"{api}\""),
            json_bad,
        ),
        (format!("kind = \"redmine\"\nurl = \"{api}\""), json_bad),
        (
            format!("kind = \"jira\"\nurl = \"{api}\"\ndeployment = \"cloud\""),
            json_bad,
        ),
        (
            format!("kind = \"confluence\"\nurl = \"{api}/wiki\"\nspaces = [\"AIMS\"]"),
            json_bad,
        ),
        (
            format!("kind = \"webdav\"\nurl = \"{api}/dav/\""),
            "expected 207 Multi-Status, got 200",
        ),
        (
            format!(
                "kind = \"s3\"\nbucket = \"b\"\nendpoint = \"{api}\"\naccess_key_id = \"AKIDTEST\""
            ),
            "expected a ListBucketResult",
        ),
    ];
    let status = |code: u16, body: Value| json!({"mode": "status", "status": code, "body": body, "times": 10});
    let failing: Vec<(&str, Value, &str)> = vec![
        (
            "401",
            status(401, json!({"message": "Bad credentials"})),
            "HTTP 401 Unauthorized: Bad credentials; check the token in $EVIDENT_TEST_GH (token_env)",
        ),
        (
            "403",
            status(
                403,
                json!({"message": "Resource not accessible by integration"}),
            ),
            "HTTP 403 Forbidden: Resource not accessible by integration; check the token in $EVIDENT_TEST_GH (token_env): it may be wrong, expired, or lack",
        ),
        (
            "404",
            status(404, json!({"message": "Not Found"})),
            "HTTP 404 Not Found: Not Found; check the URL",
        ),
        (
            "429 long",
            json!({"mode": "status", "status": 429, "headers": {"Retry-After": "3600"}, "times": 10}),
            "rate limit is exhausted for another",
        ),
        (
            "502 always",
            status(502, json!("<html><title>502 Bad Gateway</title></html>")),
            "HTTP 502 Bad Gateway: 502 Bad Gateway (gave up after 4 attempts)",
        ),
        (
            "stall",
            json!({"mode": "stall", "seconds": 5, "times": 10}),
            "no answer within 1 s (timeout)",
        ),
        (
            "truncated",
            json!({"mode": "truncate", "times": 10}),
            "broke off after",
        ),
        (
            "50 MB",
            json!({"mode": "huge", "times": 1}),
            "larger than the 32 MiB limit (50000000 bytes announced)",
        ),
    ];
    std::thread::scope(|scope| {
        for (source, malformed) in &kinds {
            let failing = failing.clone();
            scope.spawn(move || {
                let f = peers::forge(&[]);
                let p = f.port;
                let source = &source.replace("API", &format!("http://127.0.0.1:{p}"));
                let kind = source.split('"').nth(1).unwrap();
                let mut cases = failing.clone();
                cases.push((
                    "malformed",
                    json!({"mode": "malformed", "times": 1}),
                    *malformed,
                ));
                if kind == "webdav" || kind == "s3" {
                    let status = if kind == "webdav" { 207 } else { 200 };
                    cases.push((
                        "malformed XML",
                        json!({"mode": "malformed_xml", "status": status, "times": 1}),
                        "malformed XML",
                    ));
                }
                for (label, fault, expect) in &cases {
                    let label = format!("{kind}: {label}");
                    let (r, v, env) = collect_with_fault(p, source, fault.clone());
                    let (api, docs) = (&v["collectors"][0], &v["collectors"][1]);
                    assert_eq!(r.code, 1, "{label}: {}", r.stderr);
                    let msg = api["error"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{label}: no error: {api}"));
                    assert!(msg.contains(expect), "{label}: {msg}");
                    assert!(
                        r.stderr.contains("error: collector api:"),
                        "{label}: {}",
                        r.stderr
                    );
                    assert_eq!(
                        docs["new"], 5,
                        "{label}: the other collector is unaffected: {v}"
                    );
                    assert_eq!(docs["error"], Value::Null, "{label}");
                    let runs = entries(&env, "collector_run");
                    assert_eq!(runs.len(), 2, "{label}: one run entry each");
                    if label.ends_with("stall") {
                        // Side by side: the healthy collector finished first.
                        assert!(runs[0].0.starts_with("run://docs/"), "{label}: {runs:?}");
                    }
                    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
                    let recorded: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM entries WHERE source = 'api' AND kind != 'collector_run'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
                    assert_eq!(recorded, 0, "{label}: nothing partial");
                    assert!(
                        !r.stdout.contains("ghp_test_secret_123")
                            && !r.stderr.contains("ghp_test_secret_123"),
                        "{label}: secret leaked"
                    );
                    assert!(!r.stderr.contains("panicked"), "{label}: {}", r.stderr);
                    env.run(&["verify"]).ok();
                }
            });
        }
    });
    // Passing troubles: retried, then everything is recorded.
    for (label, fault) in [
        (
            "429 then ok",
            json!({"mode": "status", "status": 429, "headers": {"Retry-After": "1"}, "body": {"message": "slow down"}, "times": 1}),
        ),
        (
            "500 then ok",
            json!({"mode": "status", "status": 500, "times": 2}),
        ),
        ("truncated then ok", json!({"mode": "truncate", "times": 1})),
    ] {
        let (r, v, _env) = collect_with_fault(
            p,
            &kinds[0].0.replace("API", &format!("http://127.0.0.1:{p}")),
            fault,
        );
        assert_eq!(r.code, 0, "{label}: {}", r.stderr);
        assert_eq!(v["collectors"][0]["new"], 2, "{label}: {v}");
    }
    // Missing fields are named; a refused connection says so.
    let (r, v, env) = collect_with_fault(
        p,
        &kinds[0].0.replace("API", &format!("http://127.0.0.1:{p}")),
        status(
            200,
            json!({"total_count": 1, "workflow_runs": [{"name": "no id"}]}),
        ),
    );
    assert_eq!(r.code, 1);
    assert!(
        v["collectors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `id`"),
        "{v}"
    );
    assert_eq!(entries(&env, "ci_run").len(), 0);
    let env = env_with(&format!(
        "[[collectors]]\nname = \"gh\"\nkind = \"github_actions\"\nrepo = \"o/r\"\napi_url = \"http://127.0.0.1:{}\"\n",
        peers::free_port()
    ));
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 1);
    assert!(
        s["error"].as_str().unwrap().contains("cannot connect"),
        "{s}"
    );
}

/// A workspace with collector `api` (`source` keys, pointed at the fixture) beside a healthy
/// folder collector; `fault` applies to every path of the fixture.
fn collect_with_fault(
    port: u16,
    source: &str,
    mut fault: Value,
) -> (crate::common::Run, Value, Env) {
    let env = env_with(&format!(
        "[[collectors]]\nname = \"api\"\n{source}\ntoken_env = \"EVIDENT_TEST_GH\"\ntimeout = \"1s\"\n\n\
[[collectors]]\nname = \"docs\"\nkind = \"filesystem\"\nroot = \"docs\"\n"
    ));
    admin(port, "clear", json!({}));
    fault["prefix"] = json!("/");
    admin(port, "fault", fault);
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_GH", "ghp_test_secret_123");
    let r = env.run_with(cmd, &["--format", "json", "collect"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
    (r, v, env)
}

#[test]
fn command_collector_lines_failures_and_kept_lines() {
    let env = env_with(
        "[[collectors]]\nname = \"script\"\nkind = \"command\"\nprogram = \"sh\"\nargs = [\"feed.sh\"]\ntimeout = \"2s\"\n",
    );
    std::fs::write(env.path().join("report.txt"), "quarterly fairness review").unwrap();
    let good = r#"echo '{"uri":"custom://risk/1","kind":"risk_assessment","title":"Risk register","content":"{\"risks\":3}","controls":["A.5.2"],"effective_date":"2026-11-01"}'
echo '{"uri":"custom://fair/q4","kind":"report","content_path":"report.txt","media_type":"text/plain","controls":["A.5.4"]}'
"#;
    std::fs::write(env.path().join("feed.sh"), good).unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 2, "{s}");
    assert_eq!(entries(&env, "risk_assessment")[0].1, "A.5.2");
    assert_eq!(entries(&env, "report")[0].1, "A.5.4");
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 0, "{s}");

    // An invalid line after a valid one: the valid one is kept, the run fails with stderr.
    std::fs::write(
        env.path().join("feed.sh"),
        "echo '{\"uri\":\"custom://a\",\"kind\":\"note\",\"content\":\"x\"}'\necho 'not json'\necho 'boom: token expired' >&2\n",
    )
    .unwrap();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(s["new"], 1, "{s}");
    let msg = s["error"].as_str().unwrap();
    assert!(
        msg.contains("line 2 is not a valid observation") && msg.contains("1 valid line(s)"),
        "{msg}"
    );
    // Non-zero exit with the stderr tail; a timeout.
    std::fs::write(
        env.path().join("feed.sh"),
        "echo 'cannot reach vault' >&2\nexit 7\n",
    )
    .unwrap();
    let (_, s) = collect(&env, &[]);
    assert!(s["error"].as_str().unwrap().contains("exited with status 7; 0 valid line(s) before it were kept; its stderr ends: cannot reach vault"), "{s}");
    std::fs::write(env.path().join("feed.sh"), "sleep 30\n").unwrap();
    let started = Instant::now();
    let (_, s) = collect(&env, &[]);
    assert!(
        s["error"].as_str().unwrap().contains("timed out after 2 s"),
        "{s}"
    );
    assert!(started.elapsed().as_secs() < 15);
    // Unknown fields and the state directory are refused.
    std::fs::write(
        env.path().join("feed.sh"),
        "echo '{\"uri\":\"custom://b\",\"kind\":\"note\",\"content\":\"x\",\"colour\":1}'\n",
    )
    .unwrap();
    let (_, s) = collect(&env, &[]);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{s}"
    );
    std::fs::write(env.path().join("feed.sh"), "echo '{\"uri\":\"custom://c\",\"kind\":\"note\",\"content_path\":\"state/signing.key\"}'\n").unwrap();
    let (_, s) = collect(&env, &[]);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("inside Evident's state directory"),
        "{s}"
    );
    env.run(&["verify"]).ok();
}

#[test]
fn config_check_connect_reaches_sources_with_their_tokens() {
    let f = peers::forge(&["--github-token", "ghp_test_secret_123"]);
    let env = github_env(f.port, "");
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_GH", "ghp_test_secret_123");
    let r = env.run_with(cmd, &["config", "check", "--connect"]).ok();
    assert!(r.stdout.contains("gh: ok"), "{}", r.stdout);
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.env("EVIDENT_TEST_GH", "ghp_wrong_token_456");
    let r = env.run_with(cmd, &["config", "check", "--connect"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("HTTP 401 Unauthorized: Bad credentials; check the token in $EVIDENT_TEST_GH (token_env)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("ghp_wrong_token_456"));
    // Without --connect nothing is contacted and an unset variable is not an error yet.
    let r = env.run(&["config", "check"]).ok();
    assert!(r.stdout.contains("valid (1 collector(s)"), "{}", r.stdout);
}

#[test]
fn rate_limit_paces_requests_to_a_host() {
    let f = peers::forge(&[]);
    let p = f.port;
    for i in 0..5 {
        admin(
            p,
            "hf/repo",
            json!({"id": format!("pace/m-{i}"), "card": "# card\n"}),
        );
    }
    let env = env_with(&format!(
        "[[collectors]]\nname = \"hub\"\nkind = \"huggingface\"\nauthor = \"pace\"\napi_url = \"http://127.0.0.1:{p}\"\nrate_limit = 10\n"
    ));
    let started = Instant::now();
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["requests"], 12, "{s}");
    // 12 requests at 10 per second cannot take less than 1.1 s.
    assert!(
        started.elapsed().as_secs_f64() >= 1.1,
        "{:?}",
        started.elapsed()
    );
}
