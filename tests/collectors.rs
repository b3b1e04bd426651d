//! API collectors against real servers: MLflow and Buildbot installed from PyPI by
//! `scripts/peers.sh`, started here on 127.0.0.1.

use serde_json::{Value, json};

use crate::common::{Env, Run};
use crate::peers::{self, http};

/// A workspace whose config has only the given collector tables.
pub fn env_with(collectors: &str) -> Env {
    let env = Env::new();
    let cfg =
        format!("[ledger]\npath = \"state\"\norigin = \"test.evident.local/aims\"\n\n{collectors}");
    std::fs::write(env.config(), cfg).unwrap();
    env.run(&["init"]).ok();
    env
}

/// `collect --format json` and the stats of its first collector.
pub fn collect(env: &Env, args: &[&str]) -> (Run, Value) {
    let mut a = vec!["--format", "json", "collect"];
    a.extend_from_slice(args);
    let r = env.run(&a);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:{}\nstderr:{}", r.stdout, r.stderr));
    let first = v["collectors"][0].clone();
    (r, first)
}

/// `(uri, controls)` of every entry of `kind`, in ledger order.
pub fn entries(env: &Env, kind: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let mut st = db
        .prepare("SELECT uri, controls FROM entries WHERE kind = ?1 ORDER BY idx")
        .unwrap();
    st.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The newest recorded content of `uri`, parsed as JSON.
pub fn content(env: &Env, uri: &str) -> Value {
    let db = rusqlite::Connection::open(env.state().join("evident.db")).unwrap();
    let sha: Vec<u8> = db
        .query_row(
            "SELECT sha256 FROM entries WHERE uri = ?1 ORDER BY idx DESC LIMIT 1",
            [uri],
            |r| r.get(0),
        )
        .unwrap();
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let blob = env
        .state()
        .join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
    serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap()
}

fn controls_of<'a>(list: &'a [(String, String)], uri_end: &str) -> &'a str {
    &list
        .iter()
        .rev()
        .find(|(u, _)| u.ends_with(uri_end))
        .unwrap_or_else(|| panic!("no entry for {uri_end}: {list:?}"))
        .1
}

fn mlflow_api(port: u16, path: &str, body: Value) -> Value {
    peers::json(port, "POST", &format!("/api/2.0/mlflow/{path}"), body)
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn mlflow_versions_aliases_tags_and_runs() {
    let Some(srv) = peers::mlflow() else { return };
    let p = srv.port;
    mlflow_api(
        p,
        "registered-models/create",
        json!({"name": "fraud detector", "description": "Scores card transactions",
        "tags": [{"key": "team", "value": "risk"}, {"key": "iso42001.controls", "value": "A.7.4"}]}),
    );
    mlflow_api(p, "registered-models/create", json!({"name": "churn"}));
    let exp = mlflow_api(p, "experiments/create", json!({"name": "fraud"}))["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = mlflow_api(
        p,
        "runs/create",
        json!({"experiment_id": exp, "start_time": 1795325841000_i64}),
    )["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    mlflow_api(
        p,
        "runs/log-metric",
        json!({"run_id": run, "key": "auc", "value": 0.91, "timestamp": 1795325842000_i64, "step": 0}),
    );
    mlflow_api(
        p,
        "runs/log-parameter",
        json!({"run_id": run, "key": "max_depth", "value": "6"}),
    );
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "fraud detector", "source": format!("runs:/{run}/model"), "run_id": run}),
    );
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "fraud detector", "source": "s3://models/fraud/2", "description": "retrained on Q3 data"}),
    );
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "fraud detector", "source": "s3://models/fraud/3", "tags": [{"key": "validation_status", "value": "passed"}]}),
    );
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "churn", "source": "s3://models/churn/1"}),
    );
    mlflow_api(
        p,
        "model-versions/transition-stage",
        json!({"name": "fraud detector", "version": "1", "stage": "Production", "archive_existing_versions": false}),
    );
    mlflow_api(
        p,
        "registered-models/alias",
        json!({"name": "fraud detector", "alias": "champion", "version": "2"}),
    );

    let env = env_with(&format!(
        "[[collectors]]\nname = \"registry\"\nkind = \"mlflow\"\nurl = \"http://127.0.0.1:{p}\"\n"
    ));
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 4, "{s}");
    let e = entries(&env, "model_version");
    assert_eq!(e.len(), 4, "{e:?}");
    assert!(
        e[0].0
            .starts_with(&format!("mlflow://127.0.0.1:{p}/models/churn/versions/1")),
        "{e:?}"
    );
    // v1: in Production with an evaluated run; v2: the champion with a description;
    // v3: validated by tag; every fraud version carries the model's A.7.4 tag.
    assert_eq!(
        controls_of(&e, "fraud%20detector/versions/1"),
        "A.4.2,A.6.2.3,A.6.2.4,A.6.2.5,A.7.4"
    );
    assert_eq!(
        controls_of(&e, "fraud%20detector/versions/2"),
        "A.4.2,A.6.2.3,A.6.2.5,A.6.2.7,A.7.4"
    );
    assert_eq!(
        controls_of(&e, "fraud%20detector/versions/3"),
        "A.4.2,A.6.2.3,A.6.2.4,A.7.4"
    );
    assert_eq!(controls_of(&e, "churn/versions/1"), "A.4.2,A.6.2.3");
    let v1 = content(
        &env,
        &format!("mlflow://127.0.0.1:{p}/models/fraud%20detector/versions/1"),
    );
    assert_eq!(v1["stage"], "Production");
    assert_eq!(v1["run"]["metrics"]["auc"], 0.91);
    assert_eq!(v1["run"]["params"]["max_depth"], "6");
    let v2 = content(
        &env,
        &format!("mlflow://127.0.0.1:{p}/models/fraud%20detector/versions/2"),
    );
    assert_eq!(v2["aliases"], json!(["champion"]));

    // Nothing changed: no entries, and no run fetched again.
    let (_, s) = collect(&env, &[]);
    assert_eq!(
        (s["new"].as_u64(), s["unchanged"].as_u64()),
        (Some(0), Some(4)),
        "{s}"
    );
    assert_eq!(
        s["requests"], 2,
        "one models page + one versions page, no runs: {s}"
    );

    // Move the alias to v3 and tag v1: exactly three versions change (v2 loses the alias).
    mlflow_api(
        p,
        "registered-models/alias",
        json!({"name": "fraud detector", "alias": "champion", "version": "3"}),
    );
    mlflow_api(
        p,
        "model-versions/set-tag",
        json!({"name": "fraud detector", "version": "1", "key": "reviewed", "value": "2026-11-30"}),
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 3, "{s}");
    let e = entries(&env, "model_version");
    assert_eq!(e.len(), 7);
    assert_eq!(
        controls_of(&e, "fraud%20detector/versions/3"),
        "A.4.2,A.6.2.3,A.6.2.4,A.6.2.5,A.7.4"
    );
    assert_eq!(
        controls_of(&e, "fraud%20detector/versions/2"),
        "A.4.2,A.6.2.3,A.6.2.7,A.7.4"
    );

    // --full reads everything again but records nothing new.
    let (_, s) = collect(&env, &["--full"]);
    assert_eq!(
        (s["new"].as_u64(), s["unchanged"].as_u64()),
        (Some(0), Some(4)),
        "{s}"
    );
    assert!(s["requests"].as_u64().unwrap() > 2, "{s}");

    // A deleted version is recorded as removed.
    peers::json(
        p,
        "DELETE",
        "/api/2.0/mlflow/model-versions/delete",
        json!({"name": "churn", "version": "1"}),
    );
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["removed"], 1, "{s}");
    env.run(&["verify"]).ok();
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn mlflow_models_filter_and_errors() {
    let Some(srv) = peers::mlflow() else { return };
    let p = srv.port;
    mlflow_api(p, "registered-models/create", json!({"name": "a"}));
    mlflow_api(p, "registered-models/create", json!({"name": "b"}));
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "a", "source": "s3://x/a"}),
    );
    mlflow_api(
        p,
        "model-versions/create",
        json!({"name": "b", "source": "s3://x/b"}),
    );
    let env = env_with(&format!(
        "[[collectors]]\nname = \"only-a\"\nkind = \"mlflow\"\nurl = \"http://127.0.0.1:{p}/\"\nmodels = [\"a\"]\n\n\
[[collectors]]\nname = \"wrong-path\"\nkind = \"mlflow\"\nurl = \"http://127.0.0.1:{p}/nope\"\n"
    ));
    let r = env.run(&["--format", "json", "collect"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["collectors"][0]["new"], 1);
    let e = entries(&env, "model_version");
    assert_eq!(e.len(), 1);
    assert!(e[0].0.ends_with("/models/a/versions/1"));
    assert!(
        r.stderr.contains("collector wrong-path") && r.stderr.contains("HTTP 404"),
        "{}",
        r.stderr
    );
    let runs = entries(&env, "collector_run");
    assert_eq!(runs.len(), 2);
    let (status, _) = http(p, "GET", "/health", None);
    assert_eq!(status, 200);
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn buildbot_builds_steps_and_results() {
    let Some((master, _worker)) = peers::buildbot(&[
        ("unit-tests", "true"),
        ("lint", "echo ok"),
        ("deploy-model", "exit 3"),
    ]) else {
        return;
    };
    let p = master.port;
    let builders: Value =
        serde_json::from_str(&http(p, "GET", "/api/v2/builders", None).1).unwrap();
    let id = |name: &str| {
        builders["builders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()["builderid"]
            .as_u64()
            .unwrap()
    };
    peers::buildbot_force(p, id("unit-tests"), 1);
    peers::buildbot_force(p, id("lint"), 2);
    peers::buildbot_force(p, id("deploy-model"), 3);
    let env = env_with(&format!(
        "[[collectors]]\nname = \"bb\"\nkind = \"buildbot\"\nurl = \"http://127.0.0.1:{p}/\"\n"
    ));
    let (r, s) = collect(&env, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s["new"], 3, "{s}");
    let e = entries(&env, "ci_run");
    assert_eq!(controls_of(&e, "builders/unit-tests/builds/1"), "A.6.2.4");
    assert_eq!(controls_of(&e, "builders/lint/builds/1"), "A.6.1.3,A.6.2.8");
    assert_eq!(controls_of(&e, "builders/deploy-model/builds/1"), "A.6.2.5");
    let failed = content(
        &env,
        &format!("buildbot://127.0.0.1:{p}/builders/deploy-model/builds/1"),
    );
    assert_eq!(failed["result"], "failure");
    assert_eq!(failed["results"], 2);
    assert!(
        failed["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "run" && s["results"] == 2),
        "{failed}"
    );

    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 0, "{s}");
    peers::buildbot_force(p, id("unit-tests"), 4);
    let (_, s) = collect(&env, &[]);
    assert_eq!(s["new"], 1, "{s}");
    assert!(
        entries(&env, "ci_run")
            .last()
            .unwrap()
            .0
            .ends_with("builders/unit-tests/builds/2")
    );
}
