//! Lifecycle chains end to end (issue 17): a model registered in a real MLflow with its
//! training run, deployment runs in the GitHub Actions fixture naming the version and the
//! change ticket, the approval in a real Redmine, an impact assessment naming the version;
//! then the same with the approval and the assessment missing, which must be findings.

use serde_json::{Value, json};

use crate::common::{Env, bin};
use crate::peers::{self, redmine_api};

fn mlflow(port: u16, path: &str, body: Value) -> Value {
    peers::json(port, "POST", &format!("/api/2.0/mlflow/{path}"), body)
}

const EXPECT: &str = r#"
[[expect]]
name = "production deployments are approved"
controls = ["A.6.2.5"]
every = { kind = "ci_run", title = "^Deploy" }
linked_to = { kind = "ticket", field = "/status/name", equals = ["Closed", "Resolved"] }

[[expect]]
name = "models in production have an impact assessment"
controls = ["A.5.2"]
every = { kind = "model_version", field = "/stage", equals = ["Production"] }
linked_to = { kind = "document", title = "impact assessment" }
"#;

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn a_release_chain_from_model_to_approval_and_its_gaps() {
    let Some(ml) = peers::mlflow() else { return };
    let Some((rm, key)) = peers::redmine() else {
        return;
    };
    let forge = peers::forge(&["--github-token", "ghp_lineage_test"]);
    let (mp, rp, fp) = (ml.port, rm.port, forge.port);

    // MLflow: the model, its training run, two versions in production.
    mlflow(
        mp,
        "registered-models/create",
        json!({"name": "fraud-detector"}),
    );
    let exp = mlflow(mp, "experiments/create", json!({"name": "fraud-training"}))["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = mlflow(
        mp,
        "runs/create",
        json!({"experiment_id": exp, "start_time": 1795325841000_i64}),
    )["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    mlflow(
        mp,
        "runs/log-metric",
        json!({"run_id": run, "key": "auc", "value": 0.93, "timestamp": 1795325842000_i64, "step": 0}),
    );
    for _ in 0..2 {
        mlflow(
            mp,
            "model-versions/create",
            json!({"name": "fraud-detector", "source": format!("runs:/{run}/model"), "run_id": run}),
        );
    }
    for v in ["1", "2"] {
        mlflow(
            mp,
            "model-versions/transition-stage",
            json!({"name": "fraud-detector", "version": v, "stage": "Production", "archive_existing_versions": false}),
        );
    }

    // Redmine: the change ticket approving v1, closed.
    let ident = format!(
        "lin{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (st, body) = redmine_api(
        rp,
        &key,
        "POST",
        "/projects.json",
        json!({"project": {"name": ident, "identifier": ident, "enabled_module_names": ["issue_tracking"], "tracker_ids": [1, 2, 3]}}),
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = redmine_api(
        rp,
        &key,
        "POST",
        "/issues.json",
        json!({"issue": {"project_id": ident, "tracker_id": 2, "subject": "Approve fraud-detector v1 for production", "priority_id": 2}}),
    );
    assert_eq!(st, 201, "{body}");
    let ticket = serde_json::from_str::<Value>(&body).unwrap()["issue"]["id"]
        .as_u64()
        .unwrap();
    let (st, _) = redmine_api(
        rp,
        &key,
        "PUT",
        &format!("/issues/{ticket}.json"),
        json!({"issue": {"status_id": 5, "notes": "Approved by the AI review board"}}),
    );
    assert_eq!(st, 204);

    // CI: the deployment of v1 names the version and the ticket; v2's names no ticket.
    for title in [
        format!("Deploy fraud-detector v1 to production (#{ticket})"),
        "Deploy fraud-detector v2 to production".to_owned(),
    ] {
        peers::json(
            fp,
            "POST",
            "/_admin/github/runs",
            json!({"name": "Deploy", "display_title": title, "jobs": 1, "artifacts": 0}),
        );
    }

    // The impact assessment of v1.
    let env = Env::new();
    std::fs::write(
        env.docs().join("impact/fraud.md"),
        "---\ntitle: Fraud detector impact assessment\ncontrols: [A.5.2]\nrelates: [model:fraud-detector/1]\n---\n# Impact\n",
    )
    .unwrap();
    std::fs::write(
        env.config(),
        format!(
            "[ledger]\npath = \"state\"\norigin = \"test.evident.local/aims\"\n\n\
             [[collectors]]\nname = \"docs\"\nkind = \"filesystem\"\nroot = \"docs\"\n\n\
             [[collectors]]\nname = \"registry\"\nkind = \"mlflow\"\nurl = \"http://127.0.0.1:{mp}\"\n\n\
             [[collectors]]\nname = \"tracker\"\nkind = \"redmine\"\nurl = \"http://127.0.0.1:{rp}\"\nprojects = [\"{ident}\"]\nuser = \"admin\"\ntoken_env = \"EVIDENT_TEST_REDMINE\"\n\n\
             [[collectors]]\nname = \"ci\"\nkind = \"github_actions\"\nrepo = \"o/r\"\napi_url = \"http://127.0.0.1:{fp}\"\ntoken_env = \"EVIDENT_TEST_GH\"\n\
             {EXPECT}"
        ),
    )
    .unwrap();
    let run_env = |args: &[&str]| {
        let mut cmd = std::process::Command::new(bin());
        cmd.env("EVIDENT_TEST_REDMINE", &key)
            .env("EVIDENT_TEST_GH", "ghp_lineage_test");
        env.run_with(cmd, args)
    };
    run_env(&["init"]).ok();
    let c = run_env(&["collect"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    run_env(&["checkpoint"]).ok();

    // Every entry naming v1 starts the trace of its identifier.
    let t = run_env(&["--format", "json", "trace", "model:fraud-detector/1"]).ok();
    let named: Vec<Value> = serde_json::from_str(&t.stdout).unwrap();
    let version = named
        .iter()
        .find(|s| s["kind"] == "model_version" && s["hops"] == 0)
        .unwrap_or_else(|| panic!("{}", t.stdout));
    let kinds_at_0: Vec<&str> = named
        .iter()
        .filter(|s| s["hops"] == 0)
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for k in ["model_version", "ci_run", "ticket", "document"] {
        assert!(
            kinds_at_0.contains(&k),
            "{k} does not name v1: {kinds_at_0:?}"
        );
    }

    // The chain from the model version's entry: its training run (which also trained v2),
    // the deployment naming v1, the ticket approving it, the impact assessment.
    let t = run_env(&["--format", "json", "trace", &version["index"].to_string()]).ok();
    let chain: Vec<Value> = serde_json::from_str(&t.stdout).unwrap();
    let find = |kind: &str, title_has: &str| {
        chain
            .iter()
            .find(|s| s["kind"] == kind && s["title"].as_str().unwrap_or("").contains(title_has))
            .unwrap_or_else(|| panic!("no {kind} {title_has:?} in the chain: {}", t.stdout))
    };
    let start = find("model_version", "fraud-detector v1");
    assert_eq!(start["hops"], 0);
    assert!(
        start["identifiers"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("run:{run}")))
    );
    let sibling = find("model_version", "fraud-detector v2");
    assert_eq!(
        (sibling["hops"].clone(), sibling["via"].clone()),
        (json!(1), json!(format!("run:{run}")))
    );
    let deploy = chain
        .iter()
        .find(|s| s["kind"] == "ci_run" && s["via"] == "model:fraud-detector/1")
        .unwrap_or_else(|| panic!("{}", t.stdout));
    assert_eq!(deploy["hops"], 1);
    let approval = find("ticket", "Approve fraud-detector v1");
    assert_eq!(
        (approval["hops"].clone(), approval["via"].clone()),
        (json!(1), json!("model:fraud-detector/1"))
    );
    let impact = find("document", "impact assessment");
    assert_eq!(impact["via"], "model:fraud-detector/1");
    // v2's deployment is two links away: through the shared training run, then v2.
    let other = chain
        .iter()
        .find(|s| s["kind"] == "ci_run" && s["via"] == "model:fraud-detector/2")
        .unwrap_or_else(|| panic!("{}", t.stdout));
    assert_eq!(other["hops"], 2);
    // Each step carries its inclusion proof, valid against the checkpoint.
    for s in &chain {
        assert!(
            s["proof_status"]
                .as_str()
                .unwrap()
                .starts_with("ok at checkpoint"),
            "{s}"
        );
        assert!(
            s["proof"]
                .as_str()
                .unwrap()
                .starts_with("c2sp.org/tlog-proof@v1"),
            "{s}"
        );
    }
    // The table shows the same chain (printed: what an auditor sees).
    let table = run_env(&["trace", &version["index"].to_string()]).ok();
    eprintln!("{}", table.stdout);
    assert!(table.stdout.contains("(start)"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains(&format!("#{ticket} Approve fraud-detector v1")),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("Deploy fraud-detector v1") || table.stdout.contains("Deploy #"),
        "{}",
        table.stdout
    );

    // The gaps: v2 was deployed without an approval and has no impact assessment.
    let cov = run_env(&["--format", "json", "coverage"]).ok();
    let v: Value = serde_json::from_str(&cov.stdout).unwrap();
    let gaps = v["violations"].as_array().unwrap();
    let names: Vec<(&str, &str)> = gaps
        .iter()
        .map(|g| {
            (
                g["expectation"].as_str().unwrap(),
                g["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(gaps.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .any(|(e, t)| *e == "production deployments are approved" && t.starts_with("Deploy #")),
        "{names:?}"
    );
    assert!(
        names.contains(&(
            "models in production have an impact assessment",
            "fraud-detector v2"
        )),
        "{names:?}"
    );
    let deploy_gap = gaps
        .iter()
        .find(|g| g["expectation"] == "production deployments are approved")
        .unwrap();
    let gap_idx = deploy_gap["index"].as_u64().unwrap();
    assert_ne!(
        gap_idx,
        deploy["index"].as_u64().unwrap(),
        "the approved deployment is not a gap"
    );
    let table = run_env(&["coverage", "--controls", "A.6.2.5,A.5.2"]);
    eprintln!("{}", table.stdout);
    assert!(
        table.stdout.contains("2 gap(s) in lifecycle chains"),
        "{}",
        table.stdout
    );
    let gate = run_env(&["coverage", "--controls", "A.6.2.5", "--fail-on", "stale"]);
    assert_eq!(gate.code, 4, "{}", gate.stderr);
    assert!(
        gate.stderr.contains("gap(s) in lifecycle chains"),
        "{}",
        gate.stderr
    );

    // The bundle: the report and OSCAL list each gap with its entry, which travels with it.
    let dir = env.path().join("bundle");
    run_env(&[
        "export",
        "--out",
        dir.to_str().unwrap(),
        "--controls",
        "A.6.2.5,A.5.2",
    ])
    .ok();
    let html = std::fs::read_to_string(dir.join("report/index.html")).unwrap();
    assert!(html.contains("<h2 id=\"gaps\">Gaps in lifecycle chains</h2>"));
    assert_eq!(html.matches("<tr class=\"gap\">").count(), 2);
    assert!(dir.join(format!("entries/{gap_idx}.json")).exists());
    let oscal: Value =
        serde_json::from_slice(&std::fs::read(dir.join("oscal/assessment-results.json")).unwrap())
            .unwrap();
    let findings = oscal["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    let gap_findings: Vec<&Value> = findings
        .iter()
        .filter(|f| f["target"]["status"]["reason"] == "gap")
        .collect();
    assert_eq!(gap_findings.len(), 2);
    assert!(
        gap_findings
            .iter()
            .any(|f| f["target"]["target-id"] == "A.6.2.5_obj")
    );
    crate::common::verify_bundle(&env, &dir, &[]).ok();

    // Approve v2 as well, give it its assessment: the gaps close.
    let (st, body) = redmine_api(
        rp,
        &key,
        "POST",
        "/issues.json",
        json!({"issue": {"project_id": ident, "tracker_id": 2, "subject": "Approve fraud-detector v2 for production", "priority_id": 2, "status_id": 5}}),
    );
    assert_eq!(st, 201, "{body}");
    std::fs::write(
        env.docs().join("impact/fraud-v2.md"),
        "---\ntitle: Fraud detector v2 impact assessment\nrelates: model:fraud-detector/2\n---\n",
    )
    .unwrap();
    run_env(&["collect"]).ok();
    let v: Value =
        serde_json::from_str(&run_env(&["--format", "json", "coverage"]).ok().stdout).unwrap();
    let left: Vec<&str> = v["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| g["expectation"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default();
    // The v2 deployment links to the model, which the new ticket names: two links away,
    // beyond the expectation's default reach of one; the assessment gap is closed.
    assert_eq!(left, ["production deployments are approved"], "{v}");
}
