//! Populations and samples (issue 17): drawn from the real CLI, carried in a bundle,
//! re-derived by `verify` and independently by a standard-library Python script, and
//! attacked by an operator who holds the signing key and wants an entry left out.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use evident::ledger::leaf::hex;

use crate::common::{Env, verify_bundle};

/// A ledger with 40 release notes for A.6.2.5 dated across the year, a few for A.6.2.6 in
/// the period, and the usual documents.
fn releases() -> Env {
    let env = Env::new();
    let dir = env.docs().join("releases");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..40u32 {
        let month = 1 + i % 12;
        std::fs::write(
            dir.join(format!("r{i:02}.md")),
            format!(
                "---\ncontrols: [A.6.2.5]\ntitle: Release {i}\neffective_date: 2026-{month:02}-{:02}\n---\n# Release {i}\n",
                1 + i % 28
            ),
        )
        .unwrap();
    }
    for i in 0..3u32 {
        std::fs::write(
            dir.join(format!("ops{i}.md")),
            format!(
                "---\ncontrols: [A.6.2.6]\neffective_date: 2026-08-0{}\n---\n# Ops {i}\n",
                i + 1
            ),
        )
        .unwrap();
    }
    env.run(&["init"]).ok();
    env.run(&["collect"]).ok();
    env
}

/// `evident population` for A.6.2.5 in Q3; returns the manifest path and its JSON.
fn q3(env: &Env) -> (PathBuf, serde_json::Value, u64) {
    let out = env.path().join("q3.json");
    let run = env
        .run(&[
            "--format",
            "json",
            "population",
            "--controls",
            "A.6.2.5",
            "--period",
            "2026-07-01..2026-09-30",
            "--out",
            out.to_str().unwrap(),
        ])
        .ok();
    let summary = run.json();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        summary["count"],
        manifest["items"].as_array().unwrap().len()
    );
    (out, manifest, summary["entry"].as_u64().unwrap())
}

fn sample(env: &Env, population: &Path, out: &str, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let out = env.path().join(out);
    let mut args = vec![
        "--format",
        "json",
        "sample",
        "--population",
        population.to_str().unwrap(),
        "--size",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    env.run(&args).ok();
    let s = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    (out, s)
}

#[test]
fn a_population_is_complete_and_a_sample_is_redrawn_by_verify_and_by_python() {
    let env = releases();
    let (pop, manifest, entry) = q3(&env);
    // Months 7, 8, 9 of 40 notes dated month 1 + i % 12: i = 6, 7, 8, 18, 19, 20, 30, 31, 32.
    let titles: Vec<&str> = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 9, "{titles:?}");
    for i in [6, 7, 8, 18, 19, 20, 30, 31, 32] {
        assert!(
            titles.contains(&format!("Release {i}").as_str()),
            "{titles:?}"
        );
    }
    assert_eq!(manifest["filter"]["controls"][0], "A.6.2.5");
    // The population is in the log, named by its SHA-256.
    let id = hex(&Sha256::digest(std::fs::read(&pop).unwrap()));
    let leaf = env.run(&["show", "--meta", &entry.to_string()]).ok().stdout;
    assert!(leaf.contains("\"kind\":\"population\""), "{leaf}");
    assert!(
        leaf.contains(&format!("evident://population/{id}")),
        "{leaf}"
    );
    assert!(leaf.contains(&id), "{leaf}");

    // A checkpoint seed and an auditor's seed: deterministic, and different.
    let (s1, first) = sample(&env, &pop, "s1.json", &[]);
    assert_eq!(first["seed"]["kind"], "checkpoint");
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    let (_, again) = sample(&env, &pop, "s1b.json", &[]);
    assert_eq!(
        first, again,
        "the same population and seed drew another sample"
    );
    let (s2, audit) = sample(&env, &pop, "s2.json", &["--seed", "ACME audit 2026-10-14"]);
    assert_eq!(audit["seed"]["value"], "ACME audit 2026-10-14");
    assert_ne!(first["items"], audit["items"]);

    let dir = env.path().join("bundle");
    env.run(&[
        "export",
        "--out",
        dir.to_str().unwrap(),
        "--controls",
        "A.2",
        "--sample",
        s1.to_str().unwrap(),
        "--sample",
        s2.to_str().unwrap(),
    ])
    .ok();
    // The sampled entries travel with their content, whatever the export's scope.
    for item in first["items"].as_array().unwrap() {
        let idx = item["index"].as_str().unwrap();
        assert!(dir.join(format!("entries/{idx}.json")).exists());
        let sha = item["sha256"].as_str().unwrap();
        assert!(dir.join(format!("blobs/sha256/{sha}")).exists());
    }
    let v = verify_bundle(&env, &dir, &["--format", "json"]).ok();
    let report = v.json();
    assert_eq!(report["sampling"]["populations"], 1);
    assert_eq!(report["sampling"]["samples"], 2);
    let text = verify_bundle(&env, &dir, &[]).ok();
    assert!(
        text.stdout
            .contains("1 population(s) re-derived from every leaf, 2 sample(s) redrawn"),
        "{}",
        text.stdout
    );

    // The report shows each sampled item with links into the bundle.
    let html = std::fs::read_to_string(dir.join("report/index.html")).unwrap();
    assert!(html.contains("<h2 id=\"sampling\">Populations and samples</h2>"));
    assert!(
        html.contains("9 entries, evidence dated 2026-07-01..2026-09-30, controls A.6.2.5"),
        "report lacks the population"
    );
    assert_eq!(html.matches("<table class=\"sample\">").count(), 2);
    let first_item = first["items"][0]["index"].as_str().unwrap();
    assert!(html.contains(&format!(
        "<tr><td class=\"n\">1</td><td><a href=\"../entries/{first_item}.json\">"
    )));

    // A second opinion from Python's standard library: same list, same root, same draw.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-sample.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("population {id}: 9 of")), "{said}");
    assert_eq!(said.matches("items redrawn").count(), 2, "{said}");
}

/// OSCAL: the population is a back-matter resource, each sample an observation with one
/// subject per sampled item; compliance-trestle reads the document.
#[test]
#[cfg_attr(
    evident_skip_peers,
    ignore = "needs the real peers (EVIDENT_SKIP_PEERS=1)"
)]
fn samples_in_oscal_validate_with_compliance_trestle() {
    let Some(venv) = crate::peers::peer("trestle") else {
        return;
    };
    let env = releases();
    let (pop, _, _) = q3(&env);
    let (s, drawn) = sample(&env, &pop, "s.json", &["--seed", "auditor"]);
    let dir = env.path().join("bundle");
    env.run(&[
        "export",
        "--out",
        dir.to_str().unwrap(),
        "--sample",
        s.to_str().unwrap(),
    ])
    .ok();
    let script = r#"
import json, pathlib, sys
from trestle.oscal.assessment_results import AssessmentResults
ar = AssessmentResults.oscal_read(pathlib.Path(sys.argv[1]))
r = ar.results[0]
samples = [o for o in r.observations if o.title.startswith("Sample ")]
resources = {str(res.uuid): res for res in ar.back_matter.resources}
print(json.dumps({
  "subjects": [resources[str(s.subject_uuid)].title for s in samples[0].subjects],
  "populations": [res.title for res in ar.back_matter.resources if res.title.startswith("Population ")],
}))
"#;
    let out = std::process::Command::new(venv.join("bin/python"))
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
    assert_eq!(v["populations"].as_array().unwrap().len(), 1);
    let subjects: Vec<String> = v["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = drawn["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "Entry {}: {}",
                i["index"].as_str().unwrap(),
                i["title"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        subjects, want,
        "one subject per sampled item, in draw order"
    );
}

#[test]
fn the_cli_refuses_populations_it_did_not_draw() {
    let env = releases();
    let (pop, manifest, _) = q3(&env);
    // Hand-edited: pretty-printed is not canonical (exit 2, names the file).
    let pretty = env.path().join("pretty.json");
    std::fs::write(&pretty, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    refused(
        env.run(&[
            "sample",
            "--population",
            pretty.to_str().unwrap(),
            "--size",
            "3",
        ]),
        2,
        "pretty.json is not an Evident population manifest: it is not in canonical form",
    );
    // Canonical, but an entry left out: the ledger disagrees (exit 3).
    let mut short = manifest.clone();
    short["items"].as_array_mut().unwrap().remove(0);
    short["count"] = serde_json::Value::String("8".into());
    let forged = env.path().join("forged.json");
    let mut bytes = serde_json::to_vec(&short).unwrap();
    bytes.push(b'\n');
    std::fs::write(&forged, &bytes).unwrap();
    refused(
        env.run(&[
            "sample",
            "--population",
            forged.to_str().unwrap(),
            "--size",
            "3",
        ]),
        3,
        "is not what this ledger's entries up to",
    );
    let x = env.path().join("x.tar.gz");
    refused(
        env.run(&[
            "export",
            "--out",
            x.to_str().unwrap(),
            "--population",
            forged.to_str().unwrap(),
        ]),
        3,
        "forged.json is not what this ledger's entries",
    );
    assert!(!x.exists(), "a refused export left a bundle");
    // Bad periods and sizes are named.
    refused(
        env.run(&["population", "--period", "2026-09-30..2026-07-01"]),
        2,
        "ends before it starts",
    );
    refused(
        env.run(&["population", "--period", "Q3"]),
        2,
        "write FROM..UNTIL",
    );
    refused(
        env.run(&[
            "sample",
            "--population",
            pop.to_str().unwrap(),
            "--size",
            "0",
        ]),
        2,
        "--size 0",
    );
}

#[track_caller]
fn refused(run: crate::common::Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{needle:?} not in {}",
        run.stderr
    );
}

/// The operator holds the signing key, so a forged bundle can carry valid checksums and a
/// valid signature over them; what it cannot forge is the log. Each forgery must fail the
/// sampling check with its own reason.
#[test]
fn an_operator_with_the_key_cannot_leave_an_entry_out() {
    let env = releases();
    let (pop, _, _) = q3(&env);
    let (s, _) = sample(&env, &pop, "s.json", &[]);
    let dir = env.path().join("bundle");
    env.run(&[
        "export",
        "--out",
        dir.to_str().unwrap(),
        "--sample",
        s.to_str().unwrap(),
    ])
    .ok();
    let signer = evident::ledger::state::StateDir::new(env.state())
        .signer()
        .unwrap();
    let pop_json = find(&dir.join("populations"), ".json");
    let pop_id = pop_json.file_stem().unwrap().to_str().unwrap().to_owned();
    let leaves = dir.join(format!("populations/{pop_id}.leaves"));

    // 1. An entry left out of the population, the manifest renamed to its new digest.
    let forged = copy(&dir, "left-out");
    let mut dropped = serde_json::Value::Null;
    let new_id = rewrite_manifest(&forged.join(format!("populations/{pop_id}.json")), |m| {
        dropped = m["items"].as_array_mut().unwrap().remove(3);
        let n = m["items"].as_array().unwrap().len();
        m["count"] = serde_json::Value::String(n.to_string());
    });
    std::fs::rename(
        forged.join(format!("populations/{pop_id}.leaves")),
        forged.join(format!("populations/{new_id}.leaves")),
    )
    .unwrap();
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "entry {} ({}) matches the filter but the population leaves it out",
            dropped["index"].as_str().unwrap(),
            dropped["uri"].as_str().unwrap()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("is not in the bundle"),
        "the sample's population went missing: {}",
        out.stdout
    );

    // 2. The matching leaf dropped from the leaves as well: the tree no longer adds up.
    let forged = copy(&dir, "leaf-dropped");
    let text = std::fs::read(&leaves).unwrap();
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let at: usize = dropped["index"].as_str().unwrap().parse().unwrap();
    let kept: Vec<u8> = lines[..lines.len() - 1]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .flat_map(|(_, l)| [l.to_vec(), b"\n".to_vec()].concat())
        .collect();
    std::fs::write(forged.join(format!("populations/{pop_id}.leaves")), kept).unwrap();
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout.contains("the population's checkpoint has"),
        "{}",
        out.stdout
    );

    // 3. The leaf kept but its controls rewritten so it no longer matches: another root.
    let forged = copy(&dir, "leaf-rewritten");
    let rewritten = String::from_utf8(text.clone())
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == at {
                l.replace("A.6.2.5", "A.6.2.6")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect::<String>();
    std::fs::write(
        forged.join(format!("populations/{pop_id}.leaves")),
        rewritten,
    )
    .unwrap();
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout
            .contains("do not hash to the population's checkpoint root"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("is listed but no leaf of that index matches"),
        "{}",
        out.stdout
    );

    // 4. The sample reordered (a friendlier item first), renamed to its digest.
    let forged = copy(&dir, "sample-reordered");
    rewrite_manifest(&find(&forged.join("samples"), ".json"), |sm| {
        sm["items"].as_array_mut().unwrap().swap(0, 4);
    });
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout.contains("they differ from draw 1 on"),
        "{}",
        out.stdout
    );

    // 5. A seed taken from a later checkpoint than the first after the population entry.
    env.run(&[
        "add",
        env.docs().join("minutes.txt").to_str().unwrap(),
        "--control",
        "9.3",
    ])
    .ok();
    env.run(&["checkpoint"]).ok();
    let forged = copy(&dir, "seed-shopped");
    let later = std::fs::read_to_string(forged.join("checkpoint")).unwrap();
    let root = later.lines().nth(2).unwrap().to_owned();
    rewrite_manifest(&find(&forged.join("samples"), ".json"), |sm| {
        sm["seed"]["checkpoint"] = serde_json::Value::String(later);
        sm["seed"]["value"] = serde_json::Value::String(root);
    });
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout
            .contains("but the first signed after the population entry"),
        "{}",
        out.stdout
    );

    // 6. A sample never recorded in the log (one of many drawn): its entry left out.
    let forged = copy(&dir, "sample-unrecorded");
    let sample_id = find(&forged.join("samples"), ".json")
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut dropped_entry = None;
    for e in std::fs::read_dir(forged.join("entries")).unwrap() {
        let p = e.unwrap().path();
        if std::fs::read_to_string(&p)
            .unwrap()
            .contains(&format!("evident://sample/{sample_id}"))
        {
            dropped_entry = Some(p.file_stem().unwrap().to_str().unwrap().to_owned());
        }
    }
    let n = dropped_entry.expect("the sample entry travels with the bundle");
    drop_entry(&forged, n.parse().unwrap());
    reseal(&forged, &signer);
    let out = verify_bundle(&env, &forged, &[]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout
            .contains("the bundle carries no `sample` entry recording it"),
        "{}",
        out.stdout
    );

    // The untouched bundle still verifies, and says which seeds it redrew.
    let ok = verify_bundle(&env, &dir, &[]).ok();
    assert!(
        ok.stdout
            .contains("1 sample(s) redrawn (seeds: checkpoint "),
        "{}",
        ok.stdout
    );

    // The population's record cannot lose its bytes to an erasure of a copy.
    std::fs::copy(&pop_json, env.path().join("copy.json")).unwrap();
    env.run(&[
        "add",
        env.path().join("copy.json").to_str().unwrap(),
        "--control",
        "A.2.2",
    ])
    .ok();
    let q = env.run(&["--format", "json", "query", "A.2.2"]).ok();
    let copy_idx = q
        .json()
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["uri"].as_str().unwrap().ends_with("copy.json"))
        .unwrap()["index"]
        .as_u64()
        .unwrap();
    let e = env.run(&[
        "erase",
        &copy_idx.to_string(),
        "--reason",
        "REQ-1",
        "--with-copies",
    ]);
    assert_eq!(e.code, 2, "{}", e.stderr);
    assert!(
        e.stderr.contains("Evident's own population record"),
        "{}",
        e.stderr
    );
}

/// Edits a manifest member as a forger would: rewritten in canonical form and renamed to its
/// new digest. Returns the new id.
fn rewrite_manifest(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut m);
    let bytes = [serde_json::to_vec(&m).unwrap(), b"\n".to_vec()].concat();
    let id = hex(&Sha256::digest(&bytes));
    std::fs::remove_file(path).unwrap();
    std::fs::write(path.with_file_name(format!("{id}.json")), &bytes).unwrap();
    id
}

/// Removes entry `n` from a directory bundle: its leaf, its proof and its index.csv row.
pub fn drop_entry(dir: &Path, n: u64) {
    std::fs::remove_file(dir.join(format!("entries/{n}.json"))).unwrap();
    std::fs::remove_file(dir.join(format!("proofs/{n}.tlog-proof"))).unwrap();
    let index: String = std::fs::read_to_string(dir.join("index.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{n},")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("index.csv"), index).unwrap();
}

fn find(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap()
}

fn copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.with_file_name(name);
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(dir)
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    to
}

/// What an operator with the signing key can do after editing a directory bundle:
/// rewrite SHA256SUMS over every member and sign it again.
pub fn reseal(dir: &Path, signer: &evident::ledger::note::NoteSigner) {
    let mut members: Vec<String> = crate::common::walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != "SHA256SUMS" && p != "SHA256SUMS.sig")
        .collect();
    members.sort();
    let sums: String = members
        .iter()
        .map(|p| {
            format!(
                "{}  {p}\n",
                hex(&Sha256::digest(std::fs::read(dir.join(p)).unwrap()))
            )
        })
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), &sums).unwrap();
    let note = signer
        .sign(&format!(
            "evident audit bundle SHA256SUMS\n{}\n",
            hex(&Sha256::digest(sums.as_bytes()))
        ))
        .unwrap();
    std::fs::write(dir.join("SHA256SUMS.sig"), note).unwrap();
}
