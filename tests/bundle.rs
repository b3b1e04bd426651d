//! Coverage, the Statement of Applicability, export bundles and their offline verification:
//! determinism, `sha256sum -c`, tampered bundles, OSCAL validated by compliance-trestle and
//! the HTML report rendered by headless Chromium.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Env, bin, fails_with, verify_bundle as verify};
use crate::peers::{fixture, peer};

/// Bundle members: path and content.
type Members = Vec<(String, Vec<u8>)>;

/// Members of a `.tar.gz`, in archive order.
fn unpack(path: &Path) -> Members {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut a = tar::Archive::new(gz);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (p, v)
        })
        .collect()
}

/// Writes members into a `.tar.gz`; names go into the header raw, so `..` can be tested.
fn repack(path: &Path, members: &[(String, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

fn member<'a>(m: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut m.iter_mut().find(|(p, _)| p == name).unwrap().1
}

fn export(env: &Env, name: &str, extra: &[&str]) -> PathBuf {
    let out = env.path().join(name);
    let mut args = vec!["export", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.run(&args).ok();
    out
}

#[test]
fn coverage_statuses_gate_and_soa() {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + "\n[controls.\"A.6.2.7\"]\nmax_age = \"10d\"\n\n[controls.\"A.3.2\"]\nmax_age = \"99999999999999d\"\n\n[applicability.excluded]\n\"A.10.4\" = \"No AI products for customers.\"\n";
    std::fs::write(env.config(), cfg).unwrap();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    let coverage_of = |id: &str, at: &str| {
        env.run(&["coverage", "--format", "json", "--controls", id, "--at", at])
            .ok()
            .json()["controls"][0]
            .clone()
    };
    let cov = env
        .run(&[
            "coverage",
            "--format",
            "json",
            "--controls",
            "A.2,A.6.2.7,A.10.4,9.2",
        ])
        .ok()
        .json();
    let by_id = |id: &str| {
        cov["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    // The policy's effective date (2026-01-15) is what counts, and it is within a year.
    let a222 = by_id("A.2.2");
    assert_eq!(a222["newest"]["basis"], "effective");
    assert_eq!(a222["newest"]["date"], "2026-01-15T00:00:00Z");
    assert_eq!(by_id("A.2.3")["status"], "missing");
    assert_eq!(by_id("A.10.4")["status"], "not-applicable");
    assert_eq!(by_id("A.6.2.7")["max_age_days"], 10);
    assert_eq!(by_id("A.6.2.7")["policy_from"], "config");
    assert_eq!(by_id("9.2")["max_age_days"], 365);

    // As of 2027-02-01 the policy is over a year old (stale).
    let c = coverage_of("A.2.2", "2027-02-01");
    assert_eq!(c["status"], "stale", "{c}");
    assert!(c["why"].as_str().unwrap().contains("older than 1y"), "{c}");
    // Before anything was recorded, nothing counts.
    assert_eq!(coverage_of("A.2.2", "2020-01-01")["status"], "missing");

    // The gate: 4 when something is stale or missing, 0 when all is fresh.
    let gate = env.run(&["coverage", "--controls", "A.2", "--fail-on", "missing"]);
    assert_eq!(gate.code, 4, "{}", gate.stderr);
    assert!(gate.stderr.contains("A.2.3"), "{}", gate.stderr);
    env.run(&["coverage", "--controls", "A.2.2", "--fail-on", "stale"])
        .ok();
    let stale = env.run(&[
        "coverage",
        "--controls",
        "A.2.2",
        "--fail-on",
        "stale",
        "--at",
        "2027-02-01",
    ]);
    assert_eq!(stale.code, 4);
    env.run(&[
        "coverage",
        "--controls",
        "A.2.2",
        "--fail-on",
        "missing",
        "--at",
        "2027-02-01",
    ])
    .ok();

    let soa = env.run(&["soa", "--format", "csv"]).ok();
    let lines: Vec<&str> = soa.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        39,
        "header + 38 Annex A controls:\n{}",
        soa.stdout
    );
    assert!(
        soa.stdout
            .contains("A.10.4,Customers,no,No AI products for customers.,excluded"),
        "{}",
        soa.stdout
    );
    assert!(
        soa.stdout.contains("A.2.2,AI policy,yes,"),
        "{}",
        soa.stdout
    );
    let md = env.run(&["soa", "--format", "markdown"]).ok();
    assert!(
        md.stdout.starts_with("| control | title | applicable |"),
        "{}",
        md.stdout
    );
}

#[test]
fn export_is_deterministic_appends_nothing_and_verifies() {
    let env = Env::ready();
    let before = env.run(&["verify", "--format", "json"]).ok().json();
    let a = export(&env, "a.tar.gz", &[]);
    // Across a second boundary (and then some), so a field taken from the clock would show.
    let start = std::time::SystemTime::now();
    let second =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    while second(std::time::SystemTime::now()) < second(start) + 2 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let b = export(&env, "b.tar.gz", &[]);
    let d = export(&env, "d", &[]);
    let e = {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        export(&env, "e", &[])
    };
    for name in [
        "README.txt",
        "report/index.html",
        "oscal/assessment-results.json",
        "SHA256SUMS",
        "index.csv",
    ] {
        assert_eq!(
            std::fs::read(d.join(name)).unwrap(),
            std::fs::read(e.join(name)).unwrap(),
            "{name} differs between two directory exports a second apart"
        );
    }
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "two exports differ"
    );
    let after = env.run(&["verify", "--format", "json"]).ok().json();
    assert_eq!(
        before["entries"], after["entries"],
        "export appended entries"
    );
    assert_eq!(
        before["checkpoints"], after["checkpoints"],
        "export signed a checkpoint without growth"
    );

    let names: Vec<String> = unpack(&a).into_iter().map(|(p, _)| p).collect();
    for want in [
        "README.txt",
        "log.vkey",
        "checkpoint",
        "entries/0.json",
        "proofs/0.tlog-proof",
        "index.csv",
        "coverage.csv",
        "soa.csv",
        "report/index.html",
        "oscal/assessment-results.json",
        "SHA256SUMS",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert_eq!(names[names.len() - 2..], ["SHA256SUMS", "SHA256SUMS.sig"]);

    // The directory form holds the same members, and stock tools check it.
    let dir = export(&env, "bundle-dir", &[]);
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    for (p, data) in unpack(&a) {
        assert_eq!(
            std::fs::read(dir.join(&p)).unwrap(),
            data,
            "{p} differs between tar and dir"
        );
    }
    let v = verify(&env, &a, &[]).ok();
    assert!(
        v.stdout.contains("OK: bundle verifies against checkpoint"),
        "{}",
        v.stdout
    );
    verify(&env, &dir, &[]).ok();

    // A grown tree gets one new checkpoint, and the earlier one travels with its proof.
    std::fs::write(
        env.docs().join("new.md"),
        "---\ncontrols: [A.3.2]\n---\n# Roles\n",
    )
    .unwrap();
    env.run(&["collect"]).ok();
    let c = export(&env, "c.tar.gz", &[]);
    let grown = env.run(&["verify", "--format", "json"]).ok().json();
    assert_eq!(
        grown["checkpoints"].as_u64().unwrap(),
        before["checkpoints"].as_u64().unwrap() + 1
    );
    let names: Vec<String> = unpack(&c).into_iter().map(|(p, _)| p).collect();
    assert!(
        names.iter().any(|n| n.starts_with("consistency/")),
        "{names:?}"
    );
    let v = verify(&env, &c, &["--format", "json"]).ok().json();
    assert!(v["consistency"].as_u64().unwrap() >= 1, "{v}");

    // The auditor's checkpoint from the first bundle is extended by the new one.
    let old = env.path().join("old.checkpoint");
    std::fs::write(&old, member(&mut unpack(&a), "checkpoint").clone()).unwrap();
    let v = verify(&env, &c, &["--previous-checkpoint", old.to_str().unwrap()]).ok();
    assert!(v.stdout.contains("extends your checkpoint"), "{}", v.stdout);
}

#[test]
fn scoped_exports_hold_only_what_was_asked() {
    let env = Env::ready();
    let out = export(&env, "a2.tar.gz", &["--controls", "A.2"]);
    let members = unpack(&out);
    let entries: Vec<&String> = members
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("entries/"))
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (p, data) in &members {
        if p.starts_with("entries/") {
            let s = String::from_utf8_lossy(data);
            assert!(s.contains("\"A.2."), "{p}: {s}");
        }
    }
    let coverage = String::from_utf8(member(&mut members.clone(), "coverage.csv").clone()).unwrap();
    assert_eq!(coverage.lines().count(), 4, "{coverage}");
    verify(&env, &out, &[]).ok();
    let none = export(&env, "none.tar.gz", &["--since", "2099-01-01"]);
    let members = unpack(&none);
    assert!(!members.iter().any(|(p, _)| p.starts_with("entries/")));
    // Coverage in a bundle counts only what the bundle holds, so nothing is fresh here.
    let cov = String::from_utf8(member(&mut members.clone(), "coverage.csv").clone()).unwrap();
    assert!(!cov.contains(",fresh,"), "{cov}");
    verify(&env, &none, &[]).ok();
}

#[test]
fn tampered_bundles_fail_with_the_exact_problem() {
    let env = Env::ready();
    let good = export(&env, "good.tar.gz", &[]);
    let orig = unpack(&good);
    let bad = env.path().join("bad.tar.gz");
    let case = |edit: &dyn Fn(&mut Members), needle: &str| {
        let mut m = orig.clone();
        edit(&mut m);
        repack(&bad, &m);
        fails_with(verify(&env, &bad, &[]), needle);
    };
    // A repacked but unchanged bundle still verifies: the checks are about content.
    repack(&bad, &orig);
    verify(&env, &bad, &[]).ok();

    case(
        &|m| {
            let e = member(m, "entries/1.json");
            let i = e.windows(5).position(|w| w == b"docs/").unwrap();
            e[i] = b'D';
        },
        "entry 1: the inclusion proof proofs/1.tlog-proof does not lead from entries/1.json",
    );
    case(
        &|m| {
            let blobs: Vec<usize> = m
                .iter()
                .enumerate()
                .filter(|(_, (p, _))| p.starts_with("blobs/"))
                .map(|(i, _)| i)
                .collect();
            let (x, y) = (blobs[0], blobs[1]);
            let tmp = m[x].1.clone();
            m[x].1 = m[y].1.clone();
            m[y].1 = tmp;
        },
        "not to its name (altered or swapped)",
    );
    case(
        &|m| {
            let p = member(m, "proofs/2.tlog-proof");
            let s = String::from_utf8(p.clone()).unwrap();
            let mut lines: Vec<&str> = s.split('\n').collect();
            lines.remove(2);
            *p = lines.join("\n").into_bytes();
        },
        "entry 2: the inclusion proof proofs/2.tlog-proof does not lead",
    );
    case(
        &|m| m.retain(|(p, _)| p != "proofs/3.tlog-proof"),
        "entry 3 has no proof",
    );
    case(
        &|m| m.retain(|(p, _)| p != "SHA256SUMS"),
        "SHA256SUMS is missing",
    );
    case(
        &|m| m.retain(|(p, _)| p != "SHA256SUMS.sig"),
        "SHA256SUMS.sig is missing",
    );
    // A report rewritten and the checksums recomputed: the signature over them fails.
    case(
        &|m| {
            let r = member(m, "report/index.html");
            let before = r.clone();
            *r = String::from_utf8(r.clone())
                .unwrap()
                .replace("data-status=\"missing\"", "data-status=\"fresh\"")
                .into_bytes();
            assert_ne!(*r, before, "the report must really be rewritten");
            forged::reseal(m);
        },
        "SHA256SUMS.sig signs other checksums",
    );
    // Resealing without an edit changes nothing: the checks above fail for the edit.
    let mut m = orig.clone();
    forged::reseal(&mut m);
    assert_eq!(m, orig, "reseal must write exactly what export wrote");
    case(
        &|m| {
            let s = member(m, "SHA256SUMS");
            let t = String::from_utf8(s.clone()).unwrap().replacen('0', "1", 1);
            *s = t.into_bytes();
        },
        "SHA256SUMS says",
    );
    case(
        &|m| m.push(("../evil.sh".into(), b"#!/bin/sh\n".to_vec())),
        "\"../evil.sh\" escapes the bundle with '..'",
    );
    case(
        &|m| m.push(("/etc/evil".into(), b"x".to_vec())),
        "is an absolute path",
    );
    case(
        &|m| m.push(("extra.txt".into(), b"x".to_vec())),
        "unexpected member extra.txt",
    );
    assert!(!env.path().join("../evil.sh").exists() && !env.path().join("evil.sh").exists());

    // A checkpoint signed by another key (same origin) is refused.
    let other = Env::ready();
    let forged = member(&mut unpack(&export(&other, "o.tar.gz", &[])), "checkpoint").clone();
    case(
        &|m| *member(m, "checkpoint") = forged.clone(),
        "checkpoint is not signed by the key you gave",
    );

    // A truncated archive.
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(verify(&env, &bad, &[]), "truncated or corrupt");

    // A symlink member.
    let f = std::fs::File::create(&bad).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for (p, d) in &orig {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, d.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_path("report/passwd").unwrap();
    h.set_link_name("/etc/passwd").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    b.into_inner().unwrap().finish().unwrap();
    fails_with(
        verify(&env, &bad, &[]),
        "refused member report/passwd: it is a symbolic link",
    );

    // An oversized member is refused unread.
    let mut m = orig.clone();
    member(&mut m, "entries/0.json").resize(2 << 20, b' ');
    repack(&bad, &m);
    fails_with(verify(&env, &bad, &[]), "over the 1048576-byte limit");

    // A bundle directory with a symlink.
    let dir = export(&env, "dir", &[]);
    std::os::unix::fs::symlink("/etc/passwd", dir.join("blobs/passwd")).unwrap();
    fails_with(
        verify(&env, &dir, &[]),
        "refused member blobs/passwd: it is a symbolic link",
    );

    // Without --key there is nothing to trust: a usage error, not a pass.
    let k = env.run(&["verify", good.to_str().unwrap()]);
    assert_eq!(k.code, 2, "{}", k.stderr);
    assert!(k.stderr.contains("needs --key"), "{}", k.stderr);
}

#[test]
fn a_previous_checkpoint_the_tree_does_not_extend() {
    // Two ledgers with one key: the auditor saw the first; the second rewrote history.
    let env = Env::new();
    env.run(&["init"]).ok();
    let fork = Env::new();
    std::fs::remove_dir_all(fork.docs()).unwrap();
    copy_dir(&env.path().join("state"), &fork.state());
    copy_dir(&env.docs(), &fork.docs());
    env.run(&["collect"]).ok();
    let seen = env.run(&["checkpoint"]).ok().stdout;
    std::fs::write(
        fork.docs().join("policy.md"),
        "---\ncontrols: [A.2.2]\n---\n# AI Policy (rewritten)\n",
    )
    .unwrap();
    fork.run(&["collect"]).ok();
    fork.run(&["checkpoint"]).ok();
    std::fs::write(fork.docs().join("more.md"), "# more\n").unwrap();
    fork.run(&["collect"]).ok();
    let bundle = export(&fork, "fork.tar.gz", &[]);
    let kept = env.path().join("kept.checkpoint");
    std::fs::write(&kept, seen).unwrap();
    // The fork's bundle is consistent in itself…
    verify(&fork, &bundle, &[]).ok();
    // …but not with what the auditor kept.
    fails_with(
        verify(
            &fork,
            &bundle,
            &["--previous-checkpoint", kept.to_str().unwrap()],
        ),
        "does not extend your checkpoint",
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn oscal_validates_with_compliance_trestle() {
    let Some(venv) = peer("trestle") else { return };
    let env = Env::ready();
    let dir = export(&env, "bundle", &[]);
    let script = r#"
import json, pathlib, sys
from trestle.oscal.assessment_results import AssessmentResults
ar = AssessmentResults.oscal_read(pathlib.Path(sys.argv[1]))
r = ar.results[0]
print(json.dumps({
  "observations": len(r.observations or []),
  "findings": {f.target.target_id: f.target.status.state.value for f in r.findings or []},
  "hrefs": [e.href for o in r.observations for e in o.relevant_evidence],
  "hashes": [h.value for res in ar.back_matter.resources for l in (res.rlinks or []) for h in (l.hashes or [])],
}))
"#;
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(dir.join("oscal/assessment-results.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trestle refused the document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = std::fs::read_dir(dir.join("entries")).unwrap().count() as u64;
    assert_eq!(v["observations"].as_u64().unwrap(), entries);
    assert_eq!(v["findings"]["A.2.2_obj"], "satisfied");
    assert_eq!(v["findings"]["A.2.3_obj"], "not-satisfied");
    assert_eq!(v["findings"]["clause-9.2_obj"], "not-satisfied");
    // Evidence links resolve inside the bundle, and the back matter carries content hashes.
    for href in v["hrefs"].as_array().unwrap() {
        let rel = href.as_str().unwrap().strip_prefix("../").unwrap();
        assert!(dir.join(rel).is_file(), "{rel}");
    }
    let hashes: Vec<&str> = v["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    for b in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let name = b.unwrap().file_name().into_string().unwrap();
        assert!(hashes.contains(&name.as_str()), "{name} has no rlink hash");
    }
}

/// Debian's Chromium, or `None` (loudly) when peers are skipped.
fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("EVIDENT_SKIP_PEERS").as_deref() == Ok("1") {
        eprintln!("\n*** SKIPPED: chromium not installed and EVIDENT_SKIP_PEERS=1 ***\n");
        return None;
    }
    panic!("chromium is not installed: run ./scripts/peers.sh (apt package chromium)");
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn the_html_report_renders_every_control_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let env = Env::ready();
    let dir = export(&env, "bundle", &[]);
    let page = dir.join("report/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for banned in ["<script", "<link", "@import", "http://", "https://"] {
        assert!(
            !html.contains(banned),
            "report is not self-contained: {banned}"
        );
    }
    let profile = tempfile::tempdir().unwrap();
    let out = headless(&chromium, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let coverage = std::fs::read_to_string(dir.join("coverage.csv")).unwrap();
    let mut n = 0;
    for line in coverage.lines().skip(1) {
        let mut f = line.split(',');
        let (id, status) = (f.next().unwrap(), f.next().unwrap());
        let section = format!("id=\"c-{id}\" data-control=\"{id}\" data-status=\"{status}\"");
        assert!(dom.contains(&section), "{id} ({status}) not rendered");
        n += 1;
    }
    assert_eq!(n, 74, "every control and clause");
    assert!(dom.contains("data-status=\"fresh\"><b>"), "summary cards");
    // A screenshot for the README, when asked for.
    if let Ok(shot) = std::env::var("EVIDENT_REPORT_SCREENSHOT") {
        let s = headless(&chromium, profile.path())
            .args(["--window-size=1280,1400", "--hide-scrollbars"])
            .arg(format!("--screenshot={shot}"))
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(s.status.success());
    }
    let _ = bin();
}

/// A config with `[anchoring]` pointing at a TSA fixture on `port`, trusting `ca`.
fn anchored_env(port: u16, ca: &Path) -> Env {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config()).unwrap()
        + &format!(
            "\n[anchoring]\ntsa_url = \"http://127.0.0.1:{port}/tsr\"\nca_file = \"{}\"\ntimeout = \"5s\"\n",
            ca.display()
        );
    std::fs::write(env.config(), cfg).unwrap();
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    env
}

#[test]
fn checkpoints_are_anchored_by_a_real_rfc3161_tsa() {
    let tsa_dir = tempfile::tempdir().unwrap();
    let tsa = fixture("tsa_server.py", &[tsa_dir.path().to_str().unwrap()]);
    let ca = tsa_dir.path().join("ca.crt");
    let env = anchored_env(tsa.port, &ca);
    let check = env.run(&["config", "check", "--connect"]).ok();
    assert!(check.stdout.contains("anchoring: ok"), "{}", check.stdout);
    let cp = env.run(&["checkpoint", "--format", "json"]).ok().json();
    let time = cp["timestamp"].as_str().unwrap().to_owned();
    assert!(time.starts_with("20") && time.ends_with('Z'), "{cp}");

    let out = export(&env, "anchored.tar.gz", &[]);
    let again = export(&env, "again.tar.gz", &[]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&again).unwrap(),
        "the stored token is reused"
    );
    let members = unpack(&out);
    for m in ["checkpoint.tsr", "tsa/certs.pem", "tsa/ca.pem"] {
        assert!(members.iter().any(|(p, _)| p == m), "{m} missing");
    }
    // Stock OpenSSL agrees, as the README tells the auditor.
    let dir = export(&env, "anchored-dir", &[]);
    let o = Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-data",
            "checkpoint",
            "-in",
            "checkpoint.tsr",
            "-CAfile",
            "tsa/ca.pem",
            "-untrusted",
            "tsa/certs.pem",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl ts -verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(
        readme.contains("openssl ts -verify -data checkpoint -in checkpoint.tsr"),
        "{readme}"
    );

    let v = verify(&env, &out, &["--format", "json"]).ok().json();
    assert_eq!(v["timestamp"], time.as_str());
    // Checked only against the CA the bundle carries: not called ok.
    let v = verify(&env, &out, &[]).ok();
    assert!(
        v.stdout
            .contains("timestamp    unverified: CA from the bundle"),
        "{}",
        v.stdout
    );
    let ca = env.path().join("tsa-ca.pem");
    std::fs::write(&ca, member(&mut members.clone(), "tsa/ca.pem").clone()).unwrap();
    let v = verify(&env, &out, &["--tsa-ca", ca.to_str().unwrap()]).ok();
    assert!(v.stdout.contains("timestamp    ok"), "{}", v.stdout);

    // A token whose signature was altered, one over another checkpoint, a foreign CA.
    let bad = env.path().join("bad.tar.gz");
    let mut m = members.clone();
    let tsr = member(&mut m, "checkpoint.tsr");
    let last = tsr.len() - 1;
    tsr[last] ^= 0x01;
    repack(&bad, &m);
    fails_with(
        verify(&env, &bad, &[]),
        "checkpoint.tsr: the token's signature does not verify",
    );

    std::fs::write(env.docs().join("later.md"), "# later\n").unwrap();
    env.run(&["collect"]).ok();
    let newer = export(&env, "newer.tar.gz", &[]);
    let other_tsr = member(&mut unpack(&newer), "checkpoint.tsr").clone();
    let mut m = members.clone();
    *member(&mut m, "checkpoint.tsr") = other_tsr;
    repack(&bad, &m);
    fails_with(
        verify(&env, &bad, &[]),
        "its message imprint is not SHA-256 of the checkpoint",
    );

    let other_dir = tempfile::tempdir().unwrap();
    let other = fixture("tsa_server.py", &[other_dir.path().to_str().unwrap()]);
    drop(other);
    let foreign = other_dir.path().join("ca.crt");
    fails_with(
        verify(&env, &out, &["--tsa-ca", foreign.to_str().unwrap()]),
        "not issued by the CA given",
    );

    // The ledger's own verify re-checks stored tokens: one altered in the database is named.
    let v = env.run(&["verify", "--format", "json"]).ok().json();
    assert_eq!(v["timestamps"], 2, "{v}");
    let db = env.tamper_db();
    let (size, mut token): (i64, Vec<u8>) = db
        .query_row(
            "SELECT size, token FROM timestamps ORDER BY size LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let last = token.len() - 1;
    token[last] ^= 1;
    db.execute(
        "UPDATE timestamps SET token = ?1 WHERE size = ?2",
        rusqlite::params![token, size],
    )
    .unwrap();
    drop(db);
    let r = env.run(&["verify"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("RFC 3161 timestamp of checkpoint"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_tsa_that_fails_loses_no_checkpoint() {
    for (mode, needle) in [("error", "503"), ("garbage", "does not verify")] {
        let tsa_dir = tempfile::tempdir().unwrap();
        let tsa = fixture(
            "tsa_server.py",
            &[tsa_dir.path().to_str().unwrap(), "--mode", mode],
        );
        let env = anchored_env(tsa.port, &tsa_dir.path().join("ca.crt"));
        let check = env.run(&["config", "check", "--connect"]);
        assert_eq!(check.code, 1, "{mode}: {}", check.stderr);
        assert!(
            check.stderr.contains("error: anchoring"),
            "{}",
            check.stderr
        );
        let cp = env.run(&["checkpoint"]);
        assert_eq!(cp.code, 1, "{mode}: {}", cp.stderr);
        assert!(
            cp.stderr
                .contains("is signed, but it could not be anchored"),
            "{}",
            cp.stderr
        );
        assert!(cp.stderr.contains(needle), "{mode}: {}", cp.stderr);
        // The checkpoint stands, and the bundle goes out without a timestamp, saying so.
        env.run(&["verify"]).ok();
        let out = env.path().join("b.tar.gz");
        let r = env.run(&["export", "--out", out.to_str().unwrap()]).ok();
        assert!(r.stderr.contains("no RFC 3161 timestamp"), "{}", r.stderr);
        assert!(!unpack(&out).iter().any(|(p, _)| p == "checkpoint.tsr"));
        verify(&env, &out, &[]).ok();
    }
}

mod forged {
    use proptest::prelude::*;

    use super::*;

    /// Rewrites SHA256SUMS to match the members, exactly as export writes it (every member
    /// but SHA256SUMS and its signature, in archive order), as an attacker who edits a
    /// bundle would. The signature cannot be redone without the key.
    pub fn reseal(m: &mut Members) {
        let sums: String = m
            .iter()
            .filter(|(p, _)| p != "SHA256SUMS" && p != "SHA256SUMS.sig")
            .map(|(p, d)| format!("{}  {p}\n", crate::common::sha256_hex(d)))
            .collect();
        *member(m, "SHA256SUMS") = sums.into_bytes();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Any changed byte in any member fails verification, even with SHA256SUMS
        /// rewritten to match: proofs and signatures, not checksums, carry the trust.
        #[test]
        fn no_resealed_edit_passes(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            static ENV: std::sync::OnceLock<(Env, Members)> = std::sync::OnceLock::new();
            let (env, orig) = ENV.get_or_init(|| {
                let env = Env::ready();
                let out = export(&env, "p.tar.gz", &[]);
                let m = unpack(&out);
                (env, m)
            });
            let mut m = orig.clone();
            // One case in eight edits nothing: resealed, it must verify.
            if bit == 0 && at.index(8) == 0 {
                reseal(&mut m);
                let dir = tempfile::tempdir().unwrap();
                let same = dir.path().join("same.tar.gz");
                repack(&same, &m);
                let r = verify(env, &same, &[]);
                prop_assert_eq!(r.code, 0, "an unedited resealed bundle failed:\n{}", r.stdout);
                return Ok(());
            }
            let targets: Vec<usize> = m
                .iter()
                .enumerate()
                .filter(|(_, (p, d))| {
                    !d.is_empty()
                        && p != "SHA256SUMS"
                        && p != "SHA256SUMS.sig"
                })
                .map(|(i, _)| i)
                .collect();
            let i = targets[pick.index(targets.len())];
            let data = &mut m[i].1;
            let j = at.index(data.len());
            data[j] ^= 1 << bit;
            let name = m[i].0.clone();
            reseal(&mut m);
            let dir = tempfile::tempdir().unwrap();
            let bad = dir.path().join("bad.tar.gz");
            repack(&bad, &m);
            let r = verify(env, &bad, &[]);
            prop_assert_eq!(r.code, 3, "flipping bit {} of byte {} in {} passed:\n{}", bit, j, name, r.stdout);
            // The failure names what was edited: the member itself where the tree or the
            // index proves it, else the checksums whose signature no longer holds.
            let fails: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
            let documents = ["README.txt", "coverage.csv", "soa.csv", "report/index.html", "oscal/assessment-results.json", "tsa/certs.pem", "tsa/ca.pem"];
            let index_row = name == "index.csv" && fails.iter().any(|l| l.contains("index.csv"));
            let named = fails.iter().any(|l| l.contains(&name))
                || index_row
                || (documents.contains(&name.as_str()) && fails.iter().any(|l| l.contains("SHA256SUMS.sig signs other checksums")));
            prop_assert!(named, "flipping bit {} of byte {} in {}: the failure does not name it:\n{}", bit, j, name, r.stdout);
        }
    }
}

#[test]
fn the_readme_recipe_verifies_signatures_with_stock_openssl() {
    let env = Env::ready();
    let dir = export(&env, "bundle", &[]);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    let start = readme.find("printf '").unwrap();
    // The outer loop's `done` (the inner one is indented further).
    let end = readme[start..].find("\n        done").unwrap() + start + 13;
    let recipe = &readme[start..end];
    let run = |d: &Path| {
        Command::new("sh")
            .args(["-ec", recipe])
            .current_dir(d)
            .output()
            .unwrap()
    };
    let o = run(&dir);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        out.matches("Signature Verified Successfully").count(),
        2,
        "{out}"
    );
    let sums = Command::new("sha256sum")
        .arg("SHA256SUMS")
        .current_dir(&dir)
        .output()
        .unwrap();
    let line2 = std::fs::read_to_string(dir.join("SHA256SUMS.sig"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(String::from_utf8_lossy(&sums.stdout).starts_with(&line2));
    // A cosigner's signature line first (same name, another key ID, as a witness would add):
    // the recipe still checks the line of the key it was given, not the first one.
    let cp = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
    let ours = cp.lines().last().unwrap().to_owned();
    let name = ours.split(' ').nth(1).unwrap();
    let foreign = format!(
        "— {name} {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 68])
    );
    let cosigned = cp.replacen(&ours, &format!("{foreign}\n{ours}"), 1);
    std::fs::write(dir.join("checkpoint"), &cosigned).unwrap();
    let o = run(&dir);
    assert!(
        o.status.success(),
        "the recipe took the first signature line: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // Only the foreign line: refused.
    std::fs::write(
        dir.join("checkpoint"),
        cosigned.replace(&format!("\n{ours}"), ""),
    )
    .unwrap();
    assert!(!run(&dir).status.success(), "a foreign signature passed");
    std::fs::write(dir.join("checkpoint"), &cp).unwrap();
    // The same recipe refuses a checkpoint whose root was changed.
    let cp = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
    let mut lines: Vec<String> = cp.lines().map(str::to_owned).collect();
    lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
    std::fs::write(dir.join("checkpoint"), lines.join("\n") + "\n").unwrap();
    assert!(
        !run(&dir).status.success(),
        "a forged checkpoint passed the README recipe"
    );
}

/// Issue 12, item 20: the README's Go program (golang.org/x/mod/sumdb from Debian) checks
/// the checkpoint signature, every inclusion and every consistency proof of a real bundle, and
/// fails on a flipped entry byte, a forged consistency proof, a dropped proof hash or
/// another key.
#[test]
fn the_readme_go_program_checks_proofs_with_sumdb_tlog() {
    let gopath = Path::new("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog");
    if !gopath.exists() || Command::new("go").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install golang-go and golang-golang-x-mod-dev (scripts/peers.sh)"
        );
        eprintln!("skipped: Go or golang-golang-x-mod-dev is not installed");
        return;
    }
    let env = Env::ready();
    // Earlier checkpoints to prove consistency from.
    std::fs::write(env.docs().join("later.md"), "# Later\n").unwrap();
    env.run(&["collect"]).ok();
    env.run(&["checkpoint"]).ok();
    std::fs::write(env.docs().join("latest.md"), "# Latest\n").unwrap();
    env.run(&["collect"]).ok();
    let dir = export(&env, "bundle", &[]);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    let start = readme.find("----8<---- tlogcheck.go\n").unwrap() + 24;
    let end = readme.rfind("----8<----").unwrap();
    std::fs::write(dir.join("tlogcheck.go"), &readme[start..end]).unwrap();
    let gocache = env.path().join("gocache");
    let key = env.state().join("verifier.vkey");
    let go = |key: &Path| {
        Command::new("go")
            .args(["run", "tlogcheck.go"])
            .arg(key)
            .current_dir(&dir)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", &gocache)
            .output()
            .unwrap()
    };
    let o = go(&key);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let earlier = std::fs::read_dir(dir.join("checkpoints")).unwrap().count();
    assert!(earlier >= 2, "earlier checkpoints: {earlier}");
    assert!(
        out.contains(&format!("{earlier} earlier checkpoints consistent")),
        "{out}"
    );

    let tamper = |file: &str, edit: &dyn Fn(String) -> String, why: &str| {
        let path = dir.join(file);
        let before = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(before.clone())).unwrap();
        let o = go(&key);
        std::fs::write(&path, before).unwrap();
        assert!(!o.status.success(), "{why} passed the Go check");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = tamper(
        "entries/1.json",
        &|s| s.replacen("\"kind\"", "\"kinD\"", 1),
        "a changed entry",
    );
    assert!(e.contains("entry 1 is not in the tree"), "{e}");
    let consistency = std::fs::read_dir(dir.join("consistency"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let e = tamper(
        &format!("consistency/{consistency}"),
        &|s| {
            let flip = if s.starts_with('A') { "B" } else { "A" };
            format!("{flip}{}", &s[1..])
        },
        "a forged consistency proof",
    );
    assert!(e.contains("is not a prefix"), "{e}");
    tamper(
        "proofs/2.tlog-proof",
        &|s| {
            let mut lines: Vec<&str> = s.lines().collect();
            lines.remove(2);
            lines.join("\n") + "\n"
        },
        "a proof missing a hash",
    );
    let other = env.path().join("other.vkey");
    let vkey = std::fs::read_to_string(&key).unwrap();
    std::fs::write(
        &other,
        vkey.replacen("test.evident.local", "test.evident.locaL", 1),
    )
    .unwrap();
    let o = go(&other);
    assert!(!o.status.success(), "another key's name passed");
}

#[test]
fn bad_input_to_coverage_export_and_verify_is_named() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let empty = env.run(&[
        "export",
        "--out",
        env.path().join("e.tar.gz").to_str().unwrap(),
    ]);
    assert_eq!(empty.code, 1);
    assert!(
        empty.stderr.contains("the ledger is empty"),
        "{}",
        empty.stderr
    );
    env.run(&["collect"]).ok();
    let busy = env.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let r = env.run(&["export", "--out", busy.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("exists and is not empty"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(busy.join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_dir(&busy).unwrap().count(),
        1,
        "export wrote into a non-empty directory"
    );

    let r = env.run(&["coverage", "--controls", "A.6.2.9"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean A.6.2.8"), "{}", r.stderr);
    let r = env.run(&["coverage", "--at", "last tuesday"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("YYYY-MM-DD"), "{}", r.stderr);

    let key = env.state().join("verifier.vkey");
    let missing = env.run(&[
        "verify",
        "/nonexistent/b.tar.gz",
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("cannot open bundle"),
        "{}",
        missing.stderr
    );
    let junk = env.path().join("junk.tar.gz");
    std::fs::write(&junk, b"this is not a gzip stream").unwrap();
    fails_with(verify(&env, &junk, &[]), "FAIL archive");
    let good = export(&env, "g.tar.gz", &[]);
    let r = env.run(&["verify", good.to_str().unwrap(), "--key", "not a key"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--key"), "{}", r.stderr);

    // A damaged blob in the store stops the export; nothing half-written is left.
    let blob = std::fs::read_dir(env.state().join("blobs/sha256"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    std::fs::write(&blob, b"bit rot").unwrap();
    for out in ["rot.tar.gz", "rot-dir"] {
        let path = env.path().join(out);
        let r = env.run(&["export", "--out", path.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("in the blob store hashes to"),
            "{}",
            r.stderr
        );
        assert!(!path.exists(), "{out} left behind");
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("partial") || n.starts_with(".evident-export"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Whether an external tool is here; under `CI=true` a missing one fails the test.
fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed (scripts/peers.sh installs it)"
        );
        eprintln!("\n*** SKIPPED: {name} is not installed; run ./scripts/peers.sh ***\n");
    }
    found
}

/// Issue 11, item 1: whatever `verify` accepts, GNU tar, bsdtar and Python's tarfile
/// extract exactly as the genuine bundle's files; every named attack shape is refused.
#[test]
fn verify_reads_archives_exactly_as_gnu_tar_bsdtar_and_python_do() {
    if !have_tool("bsdtar") || !have_tool("tar") {
        return;
    }
    let env = Env::ready();
    let tgz = export(&env, "b.tar.gz", &[]);
    let dir = export(&env, "b-dir", &[]);
    // GNU tar's own packing of the directory bundle (GNU magic, `./` entries) is accepted.
    let gnu = env.path().join("gnu.tar.gz");
    let packed = Command::new("tar")
        .arg("-czf")
        .arg(&gnu)
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    verify(&env, &gnu, &[]).ok();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tar_differential.py");
    let key = env.state().join("verifier.vkey");
    for (bundle, seed) in [(&tgz, "export"), (&gnu, "gnu-tar")] {
        let work = env.path().join(format!("diff-{seed}"));
        let o = Command::new("python3")
            .arg(&script)
            .args([bin(), key.to_str().unwrap(), bundle.to_str().unwrap()])
            .arg(&work)
            .args(["--cases", "80", "--seed", seed])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{seed}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(summary["refused"].as_u64().unwrap() >= 15, "{summary}");
    }
}

/// Runs verify and returns (exit code, stdout, peak RSS in KiB) via Python's getrusage.
fn verify_rss(env: &Env, bundle: &Path, extra: &[&str]) -> (i32, String, u64) {
    let key = env.state().join("verifier.vkey");
    let o = Command::new("python3")
        .args([
            "-c",
            "import resource,subprocess,sys\n\
             r=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n\
             print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
             print(r.stdout)",
            bin(),
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (first, rest) = out.split_once('\n').unwrap();
    let mut it = first.split_whitespace();
    let code = it.next().unwrap().parse().unwrap();
    let rss = it.next().unwrap().parse().unwrap();
    (code, rest.to_owned(), rss)
}

/// Issue 11, item 5: tiny hostile archives cannot make the offline verifier hang or
/// exhaust memory; each ends with exit 3 and a reason.
#[test]
fn verifier_bombs_end_in_exit_3_with_bounded_memory() {
    let env = Env::ready();
    let good = export(&env, "good.tar.gz", &[]);
    let orig = unpack(&good);

    // index.csv: an unbalanced quote, then a million lines (quadratic before: 699 s).
    let mut index = b"index,kind\n\"".to_vec();
    index.extend(std::iter::repeat_n(b"a,b\n".as_slice(), 1_000_000).flatten());
    let mut m = orig.clone();
    *member(&mut m, "index.csv") = index;
    let bomb = env.path().join("csv-bomb.tar.gz");
    repack(&bomb, &m);
    let size = std::fs::metadata(&bomb).unwrap().len();
    // Tiny beside what it expands to (the bundle README alone, with its Go program, is 8 KiB).
    assert!(size < 128 << 10, "{size}");
    let (code, out, rss) = verify_rss(&env, &bomb, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("index.csv"), "{out}");
    assert!(rss < 256 << 10, "peak RSS {rss} KiB");

    // 2,000 earlier checkpoints of 1 MiB each in a ~2 MB archive (2 GB RSS before).
    let mut m = orig.clone();
    m.extend((1..=2000u64).map(|i| (format!("checkpoints/{i}"), vec![b'x'; 1 << 20])));
    let bomb = env.path().join("checkpoint-bomb.tar.gz");
    repack(&bomb, &m);
    let (code, out, rss) = verify_rss(&env, &bomb, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("over the 65536-byte limit"), "{out}");
    assert!(rss < 256 << 10, "peak RSS {rss} KiB");

    // Many small members: the memory budget refuses before memory runs out.
    let mut m = orig.clone();
    m.extend((1..=100_000u64).map(|i| (format!("checkpoints/{i}"), b"x".to_vec())));
    let bomb = env.path().join("many.tar.gz");
    repack(&bomb, &m);
    let (code, out, _) = verify_rss(&env, &bomb, &["--max-memory", "4MiB"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("would keep more than 4 MiB in memory"),
        "{out}"
    );

    // A total decompressed-size cap.
    let (code, out, _) = verify_rss(&env, &good, &["--max-total-size", "64KiB"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("decompresses to more than 65536 bytes"),
        "{out}"
    );
    // The genuine bundle passes under the defaults.
    let (code, out, _) = verify_rss(&env, &good, &[]);
    assert_eq!(code, 0, "{out}");
}

/// Issue 12, item 6: leaves are RFC 8785 (JCS) canonical JSON, as the docs now say: a
/// reference serialiser (Python's json with sorted keys, compact separators, no ASCII
/// escaping: JCS for string-only documents) reproduces every leaf byte for byte; and the
/// OSCAL import-ap resource is reachable (an rlink).
#[test]
fn leaves_are_jcs_and_the_oscal_plan_resource_has_a_link() {
    let env = Env::ready();
    let dir = export(&env, "b", &[]);
    let o = Command::new("python3")
        .args([
            "-c",
            "import json,os,sys\n\
             d=sys.argv[1]; n=0\n\
             for f in os.listdir(d):\n\
             \x20   b=open(os.path.join(d,f),'rb').read()\n\
             \x20   j=json.dumps(json.loads(b),sort_keys=True,separators=(',',':'),ensure_ascii=False).encode()\n\
             \x20   assert j==b,(f,b,j); n+=1\n\
             print(n)",
        ])
        .arg(dir.join("entries"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
            >= 5
    );
    let oscal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oscal/assessment-results.json")).unwrap())
            .unwrap();
    let ar = &oscal["assessment-results"];
    let plan = ar["import-ap"]["href"]
        .as_str()
        .unwrap()
        .trim_start_matches('#');
    let res = ar["back-matter"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == plan)
        .unwrap();
    assert_eq!(res["rlinks"][0]["href"], "../README.txt", "{res}");
    assert!(dir.join("README.txt").exists());
}

/// Issue 12, item 14: the README's Q3 example exports Q3's evidence on a first import
/// (by effective date, the default), and `--by collected` selects by recording time.
#[test]
fn export_scopes_by_evidence_date_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let cfg = std::fs::read_to_string(root.join("quickstart.toml"))
        .unwrap()
        .replace(
            "../quickstart-state",
            dir.path().join("state").to_str().unwrap(),
        )
        .replace(
            "\"sample-evidence\"",
            &format!("{:?}", root.join("sample-evidence")),
        );
    let config = dir.path().join("quickstart.toml");
    std::fs::write(&config, cfg).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&["init"]);
    run(&["collect"]);
    let uris = |out: &Path| -> Vec<String> {
        let index = std::fs::read_to_string(out.join("index.csv")).unwrap();
        index
            .lines()
            .skip(1)
            .filter(|l| l.contains(",document,"))
            .map(|l| l.split(',').nth(3).unwrap().to_owned())
            .collect()
    };
    let q3 = dir.path().join("q3");
    run(&[
        "export",
        "--out",
        q3.to_str().unwrap(),
        "--since",
        "2026-07-01",
        "--until",
        "2026-09-30",
    ]);
    let mut got = uris(&q3);
    got.sort();
    assert_eq!(
        got,
        [
            "file://aims-docs/audits/internal-audit-2026-q3.md",
            "file://aims-docs/impact-assessments/fraud-scoring-aia.md",
            "file://aims-docs/lifecycle/validation-report-fraud-scoring-v3.md",
        ],
        "{}",
        std::fs::read_to_string(q3.join("index.csv")).unwrap()
    );
    let readme = std::fs::read_to_string(q3.join("README.txt")).unwrap();
    assert!(readme.contains("entries dated"), "{readme}");
    let by_collected = dir.path().join("q3-collected");
    run(&[
        "export",
        "--out",
        by_collected.to_str().unwrap(),
        "--since",
        "2026-07-01",
        "--until",
        "2026-09-30",
        "--by",
        "collected",
    ]);
    assert!(
        uris(&by_collected).is_empty(),
        "a first import today was collected in December"
    );
}
