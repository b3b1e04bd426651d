//! Ticketing collectors against real servers: Redmine from Debian.

use serde_json::{Value, json};

use crate::collectors::{content, entries, env_with};
use crate::peers::{self, redmine_api};

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn redmine_issues_journals_closed_and_bad_keys() {
    let Some((srv, key)) = peers::redmine() else {
        return;
    };
    let p = srv.port;
    let ident = format!(
        "ev{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (st, body) = redmine_api(
        p,
        &key,
        "POST",
        "/projects.json",
        json!({"project": {"name": ident, "identifier": ident, "is_public": false, "enabled_module_names": ["issue_tracking"], "tracker_ids": [1, 2, 3]}}),
    );
    assert_eq!(st, 201, "{body}");
    let mut ids = Vec::new();
    for (tracker, subject) in [
        (1, "Incident: fraud model drift"),
        (2, "Change request: retrain monthly"),
        (3, "Concern raised about scoring fairness"),
        (2, "Dashboard colours"),
    ] {
        let (st, body) = redmine_api(
            p,
            &key,
            "POST",
            "/issues.json",
            json!({"issue": {"project_id": ident, "tracker_id": tracker, "subject": subject, "priority_id": 2}}),
        );
        assert_eq!(st, 201, "{body}");
        ids.push(
            serde_json::from_str::<Value>(&body).unwrap()["issue"]["id"]
                .as_u64()
                .unwrap(),
        );
    }
    // Close the incident with a note: closed issues are collected too, with their history.
    let (st, _) = redmine_api(
        p,
        &key,
        "PUT",
        &format!("/issues/{}.json", ids[0]),
        json!({"issue": {"status_id": 5, "notes": "Retrained and redeployed"}}),
    );
    assert_eq!(st, 204);
    let env = env_with(&format!(
        "[[collectors]]\nname = \"tracker\"\nkind = \"redmine\"\nurl = \"http://127.0.0.1:{p}\"\nprojects = [\"{ident}\"]\nuser = \"admin\"\ntoken_env = \"EVIDENT_TEST_REDMINE\"\n"
    ));
    let run = |k: &str| {
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.env("EVIDENT_TEST_REDMINE", k);
        let r = env.run_with(cmd, &["--format", "json", "collect"]);
        let v: Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
        (r, v["collectors"][0].clone())
    };
    let (r, s) = run(&key);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 4, "{s}");
    let t = entries(&env, "ticket");
    let controls = |id: u64| {
        t.iter()
            .rev()
            .find(|(u, _)| u.ends_with(&format!("/issues/{id}")))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(controls(ids[0]), "A.6.2.6,A.8.4");
    assert_eq!(controls(ids[1]), "6.3");
    assert_eq!(controls(ids[2]), "A.3.3");
    assert_eq!(controls(ids[3]), "");
    let incident = content(&env, &format!("redmine://127.0.0.1:{p}/issues/{}", ids[0]));
    assert_eq!(incident["status"]["name"], "Closed");
    assert_eq!(incident["journals"][0]["notes"], "Retrained and redeployed");

    // Unchanged: who-am-I and one listing page since the cursor.
    let (_, s) = run(&key);
    assert_eq!(
        (s["new"].as_u64(), s["requests"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    // One more note on one ticket: exactly one new entry.
    std::thread::sleep(std::time::Duration::from_millis(1100)); // updated_on has whole seconds
    let (st, _) = redmine_api(
        p,
        &key,
        "PUT",
        &format!("/issues/{}.json", ids[1]),
        json!({"issue": {"notes": "Approved by the AI board"}}),
    );
    assert_eq!(st, 204);
    let (_, s) = run(&key);
    assert_eq!(s["new"], 1, "{s}");

    // A wrong key is a clear, fatal error, never shown.
    let (r, s) = run("0123456789abcdef0123456789abcdef01234567");
    assert_eq!(r.code, 1);
    let msg = s["error"].as_str().unwrap();
    assert!(
        msg.contains("401") && msg.contains("$EVIDENT_TEST_REDMINE (token_env)"),
        "{msg}"
    );
    assert!(
        !r.stderr
            .contains("0123456789abcdef0123456789abcdef01234567")
    );
    // A key of another user than the config says.
    std::fs::write(
        env.config(),
        std::fs::read_to_string(env.config())
            .unwrap()
            .replace("user = \"admin\"", "user = \"evident-bot\""),
    )
    .unwrap();
    let (r, s) = run(&key);
    assert_eq!(r.code, 1);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("belongs to \"admin\", not to \"evident-bot\""),
        "{s}"
    );
    env.run(&["verify"]).ok();
}

fn forge_admin(port: u16, what: &str, body: Value) -> Value {
    peers::json(port, "POST", &format!("/_admin/{what}"), body)
}

#[test]
fn github_and_gitlab_issues_with_history_labels_and_cursor() {
    let f = peers::forge(&[]);
    let p = f.port;
    forge_admin(
        p,
        "github/issues",
        json!({"title": "Model produced unsafe output", "type": "Incident", "labels": ["aims:A.8.4", "sev1"]}),
    );
    forge_admin(
        p,
        "github/issues",
        json!({"title": "Feedback from a loan applicant", "labels": ["external"]}),
    );
    forge_admin(
        p,
        "github/issues",
        json!({"title": "Bump dependency", "pr": true}),
    );
    for i in 0..120 {
        forge_admin(
            p,
            "github/issues",
            json!({"title": format!("Housekeeping {i}")}),
        );
    }
    forge_admin(
        p,
        "github/issue_update",
        json!({"number": 1, "comment": "Rolled back to v3", "state": "closed"}),
    );
    forge_admin(
        p,
        "gitlab/issues",
        json!({"title": "Nonconformity NC-7 from the internal audit", "labels": ["iso42001-10.2"]}),
    );
    forge_admin(
        p,
        "gitlab/issues",
        json!({"title": "Scoring outage", "issue_type": "incident"}),
    );
    let env = env_with(&format!(
        "[[collectors]]\nname = \"gh-issues\"\nkind = \"github_issues\"\nrepo = \"o/r\"\napi_url = \"http://127.0.0.1:{p}\"\n\n\
[[collectors]]\nname = \"gl-issues\"\nkind = \"gitlab_issues\"\nproject = \"42\"\napi_url = \"http://127.0.0.1:{p}\"\n"
    ));
    let r = env.run(&["--format", "json", "collect"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["collectors"][0]["new"], 122,
        "pull requests are skipped: {v}"
    );
    assert_eq!(v["collectors"][1]["new"], 2, "{v}");
    let t = entries(&env, "ticket");
    let c = |end: &str| {
        t.iter()
            .rev()
            .find(|(u, _)| u.ends_with(end))
            .unwrap_or_else(|| panic!("no {end}"))
            .1
            .clone()
    };
    assert_eq!(c("o/r/issues/1"), "A.6.2.6,A.8.4");
    assert_eq!(c("o/r/issues/2"), "A.8.3");
    assert_eq!(c("42/issues/1"), "10.2");
    assert_eq!(c("42/issues/2"), "A.6.2.6,A.8.4");
    let rec = content(&env, &format!("github://127.0.0.1:{p}/o/r/issues/1"));
    assert_eq!(rec["issue"]["state"], "closed");
    assert_eq!(rec["history"][0]["body"], "Rolled back to v3");
    // Unchanged: the listings from the cursor only (GitHub: the newest issue again).
    let r = env.run(&["--format", "json", "collect"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["collectors"][0]["new"], 0, "{v}");
    assert_eq!(v["collectors"][0]["requests"], 1, "{v}");
    assert_eq!(v["collectors"][1]["requests"], 1, "{v}");
    // One comment on each side: exactly one entry each.
    forge_admin(
        p,
        "github/issue_update",
        json!({"number": 2, "comment": "Answered the applicant"}),
    );
    forge_admin(
        p,
        "gitlab/issue_update",
        json!({"iid": 1, "note": "Corrective action planned", "state": "closed"}),
    );
    let r = env.run(&["--format", "json", "collect"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (
            v["collectors"][0]["new"].as_u64(),
            v["collectors"][1]["new"].as_u64()
        ),
        (Some(1), Some(1)),
        "{v}"
    );
    let rec = content(&env, &format!("gitlab://127.0.0.1:{p}/42/issues/1"));
    assert_eq!(rec["history"][0]["body"], "Corrective action planned");
}

#[test]
fn jira_cloud_and_data_center_search_changelog_and_cursor() {
    let f = peers::forge(&["--jira-auth", "me@acme.test:jira-api-token"]);
    let p = f.port;
    forge_admin(
        p,
        "jira/issues",
        json!({"summary": "Chatbot gave harmful advice", "type": "Incident", "labels": ["aims:A.8.3"]}),
    );
    forge_admin(
        p,
        "jira/issues",
        json!({"summary": "Vendor model contract review", "type": "Task", "components": ["Supplier management"]}),
    );
    for i in 0..150 {
        forge_admin(
            p,
            "jira/issues",
            json!({"summary": format!("Sprint chore {i}")}),
        );
    }
    forge_admin(
        p,
        "jira/issues",
        json!({"project": "OTHER", "summary": "Not in scope"}),
    );
    forge_admin(p, "jira/update", json!({"key": "AI-1", "status": "Done"}));
    let cfg = |deployment: &str, auth: &str| {
        format!(
            "[[collectors]]\nname = \"jira\"\nkind = \"jira\"\nurl = \"http://127.0.0.1:{p}\"\nprojects = [\"AI\"]\ndeployment = \"{deployment}\"\n{auth}token_env = \"EVIDENT_TEST_JIRA\"\n"
        )
    };
    for (deployment, auth, token, pages) in [
        ("cloud", "email = \"me@acme.test\"\n", "jira-api-token", 2),
        ("datacenter", "", "jira-api-token", 2),
    ] {
        let env = env_with(&cfg(deployment, auth));
        let run = |t: &str| {
            let mut cmd = std::process::Command::new(crate::common::bin());
            cmd.env("EVIDENT_TEST_JIRA", t);
            let r = env.run_with(cmd, &["--format", "json", "collect"]);
            let v: Value =
                serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
            (r, v["collectors"][0].clone())
        };
        let (r, s) = run(token);
        assert_eq!(r.code, 0, "{deployment}: {}", r.stderr);
        assert_eq!(s["new"], 152, "{deployment}: {s}");
        assert_eq!(
            s["requests"], pages,
            "{deployment}: 152 issues are two pages of 100: {s}"
        );
        let t = entries(&env, "ticket");
        let c = |key: &str| {
            t.iter()
                .find(|(u, _)| u.ends_with(&format!("/browse/{key}")))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(c("AI-1"), "A.6.2.6,A.8.3,A.8.4", "{deployment}");
        assert_eq!(c("AI-2"), "A.10.3", "{deployment}");
        let rec = content(&env, &format!("jira://127.0.0.1:{p}/browse/AI-1"));
        assert_eq!(
            rec["changelog"]["histories"][0]["items"][0]["toString"],
            "Done"
        );
        // Unchanged: one page (the day before the newest update), nothing new.
        let (_, s) = run(token);
        assert_eq!(
            (s["new"].as_u64(), s["unchanged"].as_u64().map(|u| u > 0)),
            (Some(0), Some(true)),
            "{deployment}: {s}"
        );
        let (r, s) = run("wrong-token-77");
        assert_eq!(r.code, 1);
        assert!(
            s["error"].as_str().unwrap().contains("401")
                && s["error"]
                    .as_str()
                    .unwrap()
                    .contains("You are not authenticated"),
            "{s}"
        );
        assert!(!r.stderr.contains("wrong-token-77"));
        // A failure on the second page keeps the first page's issues and saves no cursor:
        // the next run, from the old cursor, finds the rest.
        let fresh = env_with(&cfg(deployment, auth));
        let search = match deployment {
            "cloud" => "/rest/api/3/search",
            _ => "/rest/api/2/search",
        };
        forge_admin(
            p,
            "fault",
            json!({"prefix": search, "skip": 1, "times": 1, "status": 400,
                "body": {"errorMessages": ["The value 'x' does not exist for the field 'project'."], "errors": {}}}),
        );
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.env("EVIDENT_TEST_JIRA", token);
        let r = fresh.run_with(cmd, &["--format", "json", "collect"]);
        let v: Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
        let s = &v["collectors"][0];
        assert_eq!(r.code, 1, "{deployment}: {s}");
        assert_eq!(s["new"], 100, "{deployment}: the first page is kept: {s}");
        assert!(s["error"].as_str().unwrap().contains("400"), "{s}");
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.env("EVIDENT_TEST_JIRA", token);
        let r = fresh.run_with(cmd, &["--format", "json", "collect"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            v["collectors"][0]["new"], 52,
            "{deployment}: {}",
            v["collectors"][0]
        );
    }
}

#[test]
fn confluence_pages_versions_and_labels_cloud_and_data_center() {
    let f = peers::forge(&[]);
    let p = f.port;
    forge_admin(
        p,
        "confluence/page",
        json!({"title": "AI Policy", "body": "<p>We commit to responsible AI.</p>", "labels": ["policy"]}),
    );
    forge_admin(
        p,
        "confluence/page",
        json!({"title": "Fraud model impact assessment", "body": "<p>Risks…</p>", "labels": ["aims-a.5.4"]}),
    );
    for i in 0..30 {
        forge_admin(
            p,
            "confluence/page",
            json!({"title": format!("Meeting notes {i}"), "body": "<p>notes</p>"}),
        );
    }
    for (deployment, url) in [
        ("cloud", format!("http://127.0.0.1:{p}/wiki")),
        ("datacenter", format!("http://127.0.0.1:{p}/confluence")),
    ] {
        let env = env_with(&format!(
            "[[collectors]]\nname = \"wiki\"\nkind = \"confluence\"\nurl = \"{url}\"\nspaces = [\"AIMS\"]\ndeployment = \"{deployment}\"\n"
        ));
        let (r, s) = crate::collectors::collect(&env, &[]);
        assert_eq!(r.code, 0, "{deployment}: {}", r.stderr);
        assert_eq!(s["new"], 32, "{deployment}: {s}");
        let w = entries(&env, "wiki_page");
        let c = |title: &str| {
            let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
            db.query_row(
                "SELECT controls FROM entries WHERE title LIKE ?1 ORDER BY idx DESC",
                [format!("{title}%")],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
        };
        assert_eq!(w.len(), 32);
        assert_eq!(c("AI Policy"), "A.2.2", "{deployment}");
        assert_eq!(
            c("Fraud model impact assessment"),
            "A.5.3,A.5.4",
            "{deployment}"
        );
        let (_, s) = crate::collectors::collect(&env, &[]);
        assert_eq!(s["new"], 0, "{deployment}: {s}");
        // A new version of one page is a new entry; the old one stays in the ledger.
        forge_admin(
            p,
            "confluence/edit",
            json!({"id": "65001", "body": format!("<p>Reviewed ({deployment}).</p>")}),
        );
        let (_, s) = crate::collectors::collect(&env, &[]);
        assert_eq!(s["new"], 1, "{deployment}: {s}");
        assert!(c("AI Policy").contains("A.2.2"));
        let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
        let versions: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM entries WHERE title LIKE 'AI Policy (v%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(versions, 2, "{deployment}");
    }
}

/// Redmine serves a wrong key as the anonymous user unless login is required: the
/// who-am-I answer decides, whatever the issue listing would have said.
#[test]
fn redmine_anonymous_and_foreign_users_are_refused() {
    let f = peers::forge(&[]);
    let p = f.port;
    let env = env_with(&format!(
        "[[collectors]]\nname = \"tracker\"\nkind = \"redmine\"\nurl = \"http://127.0.0.1:{p}\"\nuser = \"evident-bot\"\n"
    ));
    for (body, expect) in [
        (
            json!({"user": {"id": 0, "login": ""}}),
            "answered as the anonymous user",
        ),
        (
            json!({"user": {"id": 7, "login": "mallory"}}),
            "belongs to \"mallory\", not to \"evident-bot\"",
        ),
    ] {
        forge_admin(p, "clear", json!({}));
        forge_admin(
            p,
            "fault",
            json!({"prefix": "/users/current.json", "mode": "status", "status": 200, "body": body, "times": 5}),
        );
        let (r, s) = crate::collectors::collect(&env, &[]);
        assert_eq!(r.code, 1);
        assert!(s["error"].as_str().unwrap().contains(expect), "{s}");
        assert_eq!(entries(&env, "ticket").len(), 0);
    }
}
