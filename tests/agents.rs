//! Remote agents (`evident agent`): two agents and a centre as separate processes on
//! loopback; an agent is SIGKILLed mid-transfer three times, the centre once, each
//! restarted; every artefact arrives exactly once, with the agent that sent it.

use std::time::Duration;

use crate::common::{CONFIG, Env};
use crate::daemon::{Daemon, wait_for};

/// The centre's entries as (uri, sha256 hex, submitter).
fn centre_entries(centre: &Env) -> Vec<(String, String, String)> {
    let c = rusqlite::Connection::open_with_flags(
        centre.state().join("evident.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT uri, hex(sha256), leaf FROM entries ORDER BY idx")
        .unwrap();
    st.query_map([], |r| {
        let leaf: Vec<u8> = r.get(2)?;
        let v: serde_json::Value = serde_json::from_slice(&leaf).unwrap_or_default();
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?.to_lowercase(),
            v.pointer("/predicate/submittedBy")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_owned(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The evidence an agent recorded, as (uri, sha256 hex).
fn agent_evidence(agent: &Env) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open_with_flags(
        agent.state().join("evident.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT uri, hex(sha256) FROM entries WHERE kind = 'document' ORDER BY idx")
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?.to_lowercase(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn start_centre(centre: &Env) -> Daemon {
    let d = Daemon::start_with_env(centre, false, &[]);
    let status = centre.state().join("daemon-status.json");
    assert!(
        wait_for(Duration::from_secs(30), || {
            std::fs::read_to_string(&status).is_ok_and(|t| t.contains("api_url"))
        }),
        "the centre's API did not start:\n{}",
        d.log()
    );
    d
}

#[test]
fn two_agents_forward_through_a_centre_that_dies() {
    let centre = Env::new();
    let port = crate::peers::free_port();
    std::fs::write(
        centre.config(),
        format!("{CONFIG}\n[api]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    centre.run(&["init"]).ok();
    let tokens = [
        crate::api::token(&centre, "site-paris", "push"),
        crate::api::token(&centre, "site-lyon", "push"),
    ];
    let mut centre_d = start_centre(&centre);

    // Two agents, each with its own sources, recorded before the agents start: a backlog.
    let agents: Vec<Env> = ["paris", "lyon"]
        .iter()
        .map(|site| {
            let a = Env::new();
            for i in 0..300 {
                std::fs::write(
                    a.docs().join(format!("{site}-{i:03}.md")),
                    format!("# {site} record {i}\n{}\n", "x".repeat(i * 13)),
                )
                .unwrap();
            }
            std::fs::write(
                a.config(),
                format!(
                    "{}\n[api]\nenabled = false\n\n[agent]\nurl = \"http://127.0.0.1:{port}\"\n\
                     interval = \"1s\"\n",
                    // Collector names, and so URIs, unique across the organisation.
                    CONFIG
                        .replace(
                            "test.evident.local/aims",
                            &format!("{site}.evident.local/agent")
                        )
                        .replace("\"docs\"", &format!("\"{site}-docs\""))
                        .replace(&format!("root = \"{site}-docs\""), "root = \"docs\"")
                ),
            )
            .unwrap();
            a.run(&["init"]).ok();
            a.run(&["collect"]).ok();
            a
        })
        .collect();
    let start_agent = |i: usize| {
        Daemon::start_with_env(&agents[i], false, &[("EVIDENT_AGENT_TOKEN", &tokens[i])])
    };
    let mut agent_d: Vec<Option<Daemon>> = vec![Some(start_agent(0)), Some(start_agent(1))];

    // Crash trials: the Paris agent is SIGKILLed mid-transfer and restarted, twice.
    for threshold in [20, 60] {
        assert!(
            wait_for(Duration::from_secs(60), || centre_entries(&centre).len()
                > threshold),
            "nothing arrived:\n{}",
            agent_d[0].as_ref().unwrap().log()
        );
        drop(agent_d[0].take());
        agent_d[0] = Some(start_agent(0));
    }
    // Mid-transfer: the centre dies (SIGKILL) and the Paris agent too.
    assert!(
        wait_for(Duration::from_secs(60), || centre_entries(&centre).len()
            > 100),
        "nothing arrived:\n{}",
        agent_d[0].as_ref().unwrap().log()
    );
    drop(centre_d);
    drop(agent_d[0].take());
    let arrived = centre_entries(&centre).len();
    // While the centre is away: more evidence at Lyon, recorded and queued.
    std::fs::write(agents[1].docs().join("late.md"), "# Late record\n").unwrap();
    agents[1].run(&["collect"]).ok();
    std::thread::sleep(Duration::from_secs(2));
    let lyon_log = agent_d[1].as_ref().unwrap().log();
    assert!(
        lyon_log.contains("the centre is unreachable"),
        "the agent says so:\n{lyon_log}"
    );
    // Both come back.
    centre_d = start_centre(&centre);
    agent_d[0] = Some(start_agent(0));
    let expected: usize = agents.iter().map(|a| agent_evidence(a).len()).sum();
    assert!(expected >= 600, "{expected}");
    assert!(
        arrived < expected - 1,
        "the kill landed after the transfer ({arrived} of {expected}): the test proves nothing"
    );
    let all_there = || {
        let got = centre_entries(&centre);
        agents.iter().all(|a| {
            agent_evidence(a)
                .iter()
                .all(|(u, h)| got.iter().any(|(gu, gh, _)| gu == u && gh == h))
        })
    };
    assert!(
        wait_for(Duration::from_secs(120), all_there),
        "not everything arrived ({} of {expected}, {arrived} before the kill):\n{}",
        centre_entries(&centre).len(),
        agent_d[1].as_ref().unwrap().log()
    );
    // Exactly once per artefact, each with the agent that sent it.
    let got = centre_entries(&centre);
    for (i, a) in agents.iter().enumerate() {
        let name = ["site-paris", "site-lyon"][i];
        for (u, h) in agent_evidence(a) {
            let copies: Vec<_> = got
                .iter()
                .filter(|(gu, gh, _)| *gu == u && *gh == h)
                .collect();
            assert_eq!(copies.len(), 1, "{u} arrived {} times", copies.len());
            assert_eq!(copies[0].2, name, "{u} was sent by {name}");
        }
        // In order: what one agent sent arrives in the order the agent recorded it, across
        // the kills and restarts of both sides.
        let sent = agent_evidence(a);
        let arrived: Vec<(String, String)> = got
            .iter()
            .filter(|(gu, gh, by)| by == name && sent.iter().any(|(u, h)| u == gu && h == gh))
            .map(|(u, h, _)| (u.clone(), h.clone()))
            .collect();
        assert_eq!(arrived, sent, "{name}'s entries arrived out of order");
    }
    // An agent whose collector is named like one of the centre's is refused; forwarding
    // waits, skipping nothing.
    let clash = Env::new();
    std::fs::write(
        clash.config(),
        format!(
            "{}\n[api]\nenabled = false\n\n[agent]\nurl = \"http://127.0.0.1:{port}\"\n\
             interval = \"1s\"\n",
            CONFIG.replace("test.evident.local/aims", "clash.evident.local/agent")
        ),
    )
    .unwrap();
    clash.run(&["init"]).ok();
    clash.run(&["collect"]).ok();
    let clash_d = Daemon::start_with_env(&clash, false, &[("EVIDENT_AGENT_TOKEN", &tokens[0])]);
    clash_d.expect_log("the centre refused entry 0", 30);
    clash_d.expect_log("is a collector of this server", 1);
    let (code, _, _) = clash_d.stop();
    assert_eq!(code, Some(0));
    assert!(
        std::fs::read_to_string(clash.state().join("agent.cursor"))
            .map_or(true, |c| c.trim() == "0"),
        "nothing was skipped"
    );
    // The centre's ledger verifies, content included.
    let v = centre.run(&["--format", "json", "verify"]).ok().json();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let digests: std::collections::HashSet<String> = agents
        .iter()
        .flat_map(agent_evidence)
        .map(|(_, h)| h)
        .collect();
    assert!(v["blobs"].as_u64().unwrap() >= digests.len() as u64, "{v}");
    let (code, _, log) = agent_d[1].take().unwrap().stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(&tokens[1]), "the token never reaches the log");
    drop(centre_d);
}

#[test]
fn an_agent_without_its_token_or_with_a_clear_text_url_refuses_to_start() {
    let a = Env::new();
    let base = std::fs::read_to_string(a.config()).unwrap();
    std::fs::write(
        a.config(),
        format!("{base}\n[agent]\nurl = \"http://127.0.0.1:9\"\n"),
    )
    .unwrap();
    a.run(&["init"]).ok();
    let e = a.run(&["agent"]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("EVIDENT_AGENT_TOKEN"), "{}", e.stderr);
    std::fs::write(
        a.config(),
        format!("{base}\n[agent]\nurl = \"http://evident.example.org\"\n"),
    )
    .unwrap();
    let e = a.run(&["config", "check"]);
    assert_eq!(e.code, 2, "{}", e.stderr);
    assert!(e.stderr.contains("https://"), "{}", e.stderr);
    // `evident agent` without [agent] says what to add.
    std::fs::write(a.config(), &base).unwrap();
    let e = a.run(&["agent"]);
    assert_eq!(e.code, 2);
    assert!(e.stderr.contains("[agent]"), "{}", e.stderr);
}

/// The queue is bounded: with the centre away and more than `max_pending` entries waiting,
/// collectors pause (a folder change is not collected); when the centre returns the queue
/// drains and collecting resumes.
#[test]
fn a_full_queue_pauses_collecting_until_the_centre_takes_it() {
    let port = crate::peers::free_port();
    let agent = Env::new();
    std::fs::write(
        agent.config(),
        format!(
            "{}\n[api]\nenabled = false\n\n[agent]\nurl = \"http://127.0.0.1:{port}\"\n\
             interval = \"1s\"\nmax_pending = 3\n",
            CONFIG
                .replace("test.evident.local/aims", "site.evident.local/agent")
                .replace("\"docs\"", "\"site-docs\"")
                .replace("root = \"site-docs\"", "root = \"docs\"")
                .replace("schedule = \"*/15 * * * *\"\n", "watch = true\n")
        ),
    )
    .unwrap();
    agent.run(&["init"]).ok();
    agent.run(&["collect"]).ok();
    let centre = Env::new();
    std::fs::write(
        centre.config(),
        format!("{CONFIG}\n[api]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    centre.run(&["init"]).ok();
    let token = crate::api::token(&centre, "site", "push");
    let d = Daemon::start_with_env(&agent, false, &[("EVIDENT_AGENT_TOKEN", &token)]);
    d.expect_log("the agent's queue is full", 30);
    std::fs::write(agent.docs().join("while-away.md"), "# While away\n").unwrap();
    d.expect_log("run skipped: this agent's queue is full", 30);
    let recorded = |env: &Env, name: &str| -> bool {
        rusqlite::Connection::open(env.state().join("evident.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM entries WHERE uri LIKE ?1",
                [format!("%{name}")],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            > 0
    };
    assert!(!recorded(&agent, "while-away.md"), "collecting paused");
    // The centre comes up: the queue drains, and the next change is collected and sent.
    let centre_d = start_centre(&centre);
    d.expect_log("collecting resumes", 60);
    std::fs::write(agent.docs().join("after.md"), "# After\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || recorded(&centre, "after.md")),
        "{}",
        d.log()
    );
    drop(centre_d);
}
