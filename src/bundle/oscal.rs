//! NIST OSCAL 1.1 Assessment Results for a bundle: one observation per entry in scope, whose
//! relevant evidence points into the bundle and whose back-matter resource carries the
//! content hash; one finding per applicable control in scope, satisfied when its coverage is
//! fresh. Observations and resources are streamed into scratch files while the entries pass
//! and joined with the head and the findings at the end, so memory stays flat.
//!
//! Everything is deterministic: UUIDs are v5 of stable inputs, objects are written with
//! sorted keys (`serde_json` without `preserve_order`), dates come from the ledger.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::report::ControlEvidence;
use super::sampling::Carried;
use super::{entry_path, population_leaves_path, population_path, proof_path, sample_path};
use crate::coverage::{Coverage, Status};
use crate::ledger::leaf::hex;
use crate::ledger::reader::EntryRow;
use crate::sampling::{Population, Sample};

/// The OSCAL version written.
pub const OSCAL_VERSION: &str = "1.1.2";

static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://evident.dev/ns/oscal"));

fn uuid(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&NAMESPACE, parts.join("\u{1f}").as_bytes())
}

/// An OSCAL `control-id` token for a catalogue id (tokens cannot start with a digit).
pub fn control_token(id: &str) -> String {
    if id.starts_with("A.") {
        id.to_owned()
    } else {
        format!("clause-{id}")
    }
}

/// Observations and back-matter resources, streamed to scratch files.
pub struct Observations {
    origin: String,
    dir: PathBuf,
    obs: BufWriter<File>,
    res: BufWriter<File>,
    count: u64,
    /// The entries samples name (and their resource ids, once added).
    wanted: std::collections::BTreeSet<u64>,
    sampled: std::collections::HashMap<u64, Uuid>,
}

/// What the document's head and findings need.
pub struct Header<'a> {
    /// Log origin.
    pub origin: &'a str,
    /// Checkpoint size.
    pub checkpoint_size: u64,
    /// Checkpoint root, base64.
    pub root: &'a str,
    /// Coverage time.
    pub as_of: &'a str,
    /// Start of the assessed window.
    pub start: &'a str,
    /// Coverage of the controls in scope.
    pub coverage: &'a Coverage,
    /// Observation ids per control.
    pub evidence: &'a std::collections::BTreeMap<String, ControlEvidence>,
    /// Populations the bundle carries.
    pub populations: &'a [Carried<Population>],
    /// Samples the bundle carries.
    pub samples: &'a [Carried<Sample>],
}

fn method(kind: &str) -> &'static str {
    match kind {
        "ci_run" | "collector_run" => "TEST",
        _ => "EXAMINE",
    }
}

impl Observations {
    /// Starts the scratch files in `dir`.
    pub fn create(
        dir: &Path,
        origin: &str,
        sampled: &std::collections::BTreeSet<u64>,
    ) -> io::Result<Self> {
        let open =
            |n: &str| File::create(dir.join(n)).map(|f| BufWriter::with_capacity(1 << 16, f));
        Ok(Observations {
            origin: origin.to_owned(),
            dir: dir.to_owned(),
            obs: open("oscal-observations")?,
            res: open("oscal-resources")?,
            count: 0,
            wanted: sampled.clone(),
            sampled: std::collections::HashMap::new(),
        })
    }

    /// Adds each population as a back-matter resource (its manifest and leaves, with
    /// their hashes) and each sample as an observation whose subjects are the sampled
    /// entries' resources, one per item, in draw order. Called after every entry was added.
    fn sampling(
        &mut self,
        populations: &[Carried<Population>],
        samples: &[Carried<Sample>],
    ) -> io::Result<()> {
        for p in populations {
            let manifest = p.manifest.to_bytes();
            let resource = json!({
                "uuid": uuid(&["population", &self.origin, &p.id]).to_string(),
                "title": format!("Population {}", &p.id[..12.min(p.id.len())]),
                "description": format!(
                    "Every entry of the log up to checkpoint {} whose evidence is dated {}: {} entries. \
                     The bundle carries every leaf up to that checkpoint, so the list can be re-derived.",
                    p.manifest.range.to,
                    p.manifest.describe(),
                    p.manifest.items.len()
                ),
                "rlinks": [
                    {"href": format!("../{}", population_path(&p.id)), "media-type": "application/json",
                     "hashes": [{"algorithm": "SHA-256", "value": hex(&Sha256::digest(&manifest))}]},
                    {"href": format!("../{}", population_leaves_path(&p.id)), "media-type": "application/jsonl"},
                ],
            });
            write!(self.res, ",{resource}")?;
        }
        for s in samples {
            let population = uuid(&["population", &self.origin, &s.manifest.population.id]);
            let subjects: Vec<Value> = s
                .manifest
                .items
                .iter()
                .enumerate()
                .filter_map(|(k, item)| {
                    let res = self.sampled.get(&item.index())?;
                    Some(json!({
                        "subject-uuid": res.to_string(),
                        "type": "resource",
                        "title": format!("Draw {}: entry {}", k + 1, item.index),
                    }))
                })
                .collect();
            let mut observation = json!({
                "uuid": uuid(&["sample", &self.origin, &s.id]).to_string(),
                "title": format!("Sample {}", &s.id[..12.min(s.id.len())]),
                "description": format!(
                    "{} item(s) drawn from population {} with seed {} {:?}; each is tested with its entry, proof and content.",
                    s.manifest.items.len(),
                    s.manifest.population.id,
                    s.manifest.seed.kind,
                    s.manifest.seed.value
                ),
                "methods": ["TEST"],
                "relevant-evidence": [
                    {"href": format!("../{}", sample_path(&s.id)), "description": "The sample manifest: seed, draw keys and items.",
                     "links": [{"href": format!("#{population}"), "rel": "reference"}]},
                ],
                "collected": s.manifest.items.first().map_or_else(String::new, |i| i.collected_at.clone()),
            });
            if !subjects.is_empty() {
                observation["subjects"] = Value::Array(subjects);
            }
            let sep = if self.count == 0 { "" } else { "," };
            write!(self.obs, "{sep}{observation}")?;
            self.count += 1;
        }
        Ok(())
    }

    /// Adds the observation of one entry; `blob` is its content's member path when the
    /// bundle holds it. Returns the observation's UUID.
    pub fn add(&mut self, row: &EntryRow, leaf: &[u8], blob: Option<&str>) -> io::Result<Uuid> {
        let idx = row.index.to_string();
        let leaf_sha = hex(&Sha256::digest(leaf));
        let obs_id = uuid(&["observation", &self.origin, &idx, &leaf_sha]);
        let res_id = uuid(&["resource", &self.origin, &idx, &leaf_sha]);
        let entry = format!("../{}", entry_path(row.index));
        let mut evidence = Vec::new();
        if let Some(b) = blob {
            evidence.push(json!({
                "href": format!("../{b}"),
                "description": format!("Content of the artefact, SHA-256 {}", row.sha256),
                "links": [{"href": format!("#{res_id}"), "rel": "reference"}],
            }));
        }
        evidence.push(json!({
            "href": entry,
            "description": format!(
                "Ledger entry {idx} (in-toto statement, verbatim leaf bytes), included in the \
                 signed tree by ../{}",
                proof_path(row.index)
            ),
            "links": [{"href": format!("#{res_id}"), "rel": "reference"}],
        }));
        let title = row.title.clone().unwrap_or_else(|| row.uri.clone());
        let mut description = format!(
            "{} from collector {}: {} (collected {}",
            row.kind, row.source, row.uri, row.collected_at
        );
        if let Some(d) = &row.effective_date {
            description.push_str(&format!(", effective {d}"));
        }
        description.push(')');
        if !row.controls.is_empty() {
            description.push_str(&format!(". Supports {}.", row.controls.join(", ")));
        }
        let observation = json!({
            "uuid": obs_id.to_string(),
            "title": format!("Entry {idx}: {title}"),
            "description": description,
            "methods": [method(&row.kind)],
            "relevant-evidence": evidence,
            "collected": row.collected_at,
        });
        let mut rlinks = vec![json!({
            "href": entry,
            "media-type": "application/vnd.in-toto+json",
            "hashes": [{"algorithm": "SHA-256", "value": leaf_sha}],
        })];
        if let Some(b) = blob {
            rlinks.push(json!({
                "href": format!("../{b}"),
                "hashes": [{"algorithm": "SHA-256", "value": row.sha256}],
            }));
        }
        let resource = json!({
            "uuid": res_id.to_string(),
            "title": format!("Entry {idx}: {title}"),
            "description": if blob.is_some() {
                "The ledger entry and the artefact content it records.".to_owned()
            } else {
                format!("The ledger entry; the content (SHA-256 {}) is not in this bundle, see index.csv.", row.sha256)
            },
            "rlinks": rlinks,
        });
        let sep = if self.count == 0 { "" } else { "," };
        write!(self.obs, "{sep}{observation}")?;
        write!(self.res, ",{resource}")?;
        self.count += 1;
        if self.wanted.contains(&row.index) {
            self.sampled.insert(row.index, res_id);
        }
        Ok(obs_id)
    }

    /// Findings name every observation of their control: written straight to a scratch
    /// file, since as JSON values they would cost hundreds of bytes per entry.
    fn write_findings(
        &self,
        h: &Header<'_>,
        applicable: &[&crate::coverage::ControlCoverage],
        size: &str,
        scope_key: &str,
    ) -> io::Result<()> {
        let mut findings = BufWriter::new(File::create(self.dir.join("oscal-findings"))?);
        for (n, c) in applicable.iter().enumerate() {
            let token = control_token(c.id);
            let f = json!({
                "uuid": uuid(&["finding", h.origin, size, scope_key, c.id]).to_string(),
                "title": format!("{} {}", c.id, c.title),
                "description": format!("Evidence is {}: {}.", c.status.as_str(), c.why),
                "target": {
                    "type": "objective-id",
                    "target-id": format!("{token}_obj"),
                    "description": format!("Evidence for {} is at most {} days old ({} item(s) needed).", c.id, c.max_age_days, c.min_items),
                    "status": {
                        "state": if c.status == Status::Fresh { "satisfied" } else { "not-satisfied" },
                        "reason": c.status.as_str(),
                    },
                },
            })
            .to_string();
            if n > 0 {
                findings.write_all(b",")?;
            }
            findings.write_all(&f.as_bytes()[..f.len() - 1])?;
            let related = h
                .evidence
                .get(c.id)
                .map(|e| e.observations.as_slice())
                .unwrap_or_default();
            for (i, u) in related.iter().enumerate() {
                let head = if i == 0 {
                    ",\"related-observations\":["
                } else {
                    ","
                };
                write!(findings, "{head}{{\"observation-uuid\":\"{u}\"}}")?;
            }
            if !related.is_empty() {
                findings.write_all(b"]")?;
            }
            findings.write_all(b"}")?;
        }
        for (n, v) in h.coverage.violations.iter().enumerate() {
            let control = v.controls.first().map_or("", String::as_str);
            let f = json!({
                "uuid": uuid(&["gap", h.origin, size, &v.expectation, &v.index.to_string()]).to_string(),
                "title": format!("Gap: {} (entry {})", v.expectation, v.index),
                "description": format!(
                    "Entry {} ({}, ../{}) does not link to what the expectation {:?} requires{}.",
                    v.index,
                    v.title,
                    entry_path(v.index),
                    v.expectation,
                    if v.linked.is_empty() { String::new() } else {
                        format!("; it links to entries {}", v.linked.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                    }
                ),
                "target": {
                    "type": "objective-id",
                    "target-id": format!("{}_obj", control_token(if control.is_empty() { "10.2" } else { control })),
                    "description": format!("Expectation {:?} over the lifecycle chains of {}.", v.expectation, if control.is_empty() { "the AIMS" } else { control }),
                    "status": {"state": "not-satisfied", "reason": "gap"},
                },
            });
            if n > 0 || !applicable.is_empty() {
                findings.write_all(b",")?;
            }
            write!(findings, "{f}")?;
        }
        findings.flush()?;
        drop(findings);
        Ok(())
    }

    /// Writes `text` to `path` with the scratch files' streamed arrays in place of the
    /// markers (`resources`, `observations`, `findings`).
    fn splice(
        &self,
        text: &str,
        path: &Path,
        [res_m, obs_m, findings_m]: [&str; 3],
    ) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        let quoted = |m: &str| format!("\"{}\"", m.replace('\u{1}', "\\u0001"));
        // (position, marker length, scratch file, brackets)
        let mut splices: Vec<(usize, usize, &str, bool)> = Vec::new();
        let res = format!(",{}", quoted(res_m));
        if let Some(i) = text.find(&res) {
            splices.push((i, res.len(), "oscal-resources", false));
        }
        for (marker, file) in [
            (obs_m, "oscal-observations"),
            (findings_m, "oscal-findings"),
        ] {
            let m = quoted(marker);
            if let Some(i) = text.find(&m) {
                splices.push((i, m.len(), file, true));
            }
        }
        splices.sort();
        let mut at = 0;
        for (i, len, name, brackets) in splices {
            out.write_all(&text.as_bytes()[at..i])?;
            if brackets {
                out.write_all(b"[")?;
            }
            io::copy(&mut File::open(self.dir.join(name))?, &mut out)?;
            if brackets {
                out.write_all(b"]")?;
            }
            at = i + len;
        }
        out.write_all(&text.as_bytes()[at..])?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }

    /// Writes the whole document into the scratch directory and returns its path.
    pub fn finish(mut self, h: &Header<'_>) -> io::Result<PathBuf> {
        self.sampling(h.populations, h.samples)?;
        self.obs.flush()?;
        self.res.flush()?;
        let scope_key = h
            .coverage
            .controls
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
            .join(",");
        let size = h.checkpoint_size.to_string();
        let no_plan = uuid(&["no-assessment-plan", h.origin]);
        let applicable: Vec<_> = h
            .coverage
            .controls
            .iter()
            .filter(|c| c.status != Status::NotApplicable)
            .collect();
        let selection = if applicable.is_empty() {
            json!({"description": "No applicable control in scope.", "include-all": {}})
        } else {
            json!({"include-controls": applicable.iter().map(|c| json!({"control-id": control_token(c.id)})).collect::<Vec<_>>()})
        };
        self.write_findings(h, &applicable, &size, &scope_key)?;
        let mut result = json!({
            "uuid": uuid(&["result", h.origin, &size, &scope_key]).to_string(),
            "title": format!("Evidence ledger {} at checkpoint {}", h.origin, h.checkpoint_size),
            "description": format!(
                "Evidence recorded in the tamper-evident ledger {} (checkpoint of size {}, root {}), \
                 assessed for freshness as of {}.",
                h.origin, h.checkpoint_size, h.root, h.as_of
            ),
            "start": h.start,
            "end": h.as_of,
            "reviewed-controls": {"control-selections": [selection]},
        });
        // The streamed arrays go in where these markers stand.
        const FINDINGS: &str = "\u{1}findings\u{1}";
        if !applicable.is_empty() || !h.coverage.violations.is_empty() {
            result["findings"] = Value::String(FINDINGS.to_owned());
        }
        const OBS: &str = "\u{1}observations\u{1}";
        if self.count > 0 {
            result["observations"] = Value::String(OBS.to_owned());
        }
        const RES: &str = "\u{1}resources\u{1}";
        let doc = json!({
            "assessment-results": {
                "uuid": uuid(&["assessment-results", h.origin, &size, &scope_key]).to_string(),
                "metadata": {
                    "title": format!("ISO/IEC 42001 evidence from {}", h.origin),
                    "last-modified": h.as_of,
                    "version": size,
                    "oscal-version": OSCAL_VERSION,
                },
                "import-ap": {"href": format!("#{no_plan}")},
                "results": [result],
                "back-matter": {"resources": [
                    {
                        "uuid": no_plan.to_string(),
                        "title": "No assessment plan",
                        "description": "These results come from continuous evidence collection by Evident, not from an OSCAL assessment plan; the bundle's README.txt says how they were produced and how to check them.",
                        // NIST's constraints want every resource reachable: the README stands
                        // in for the plan.
                        "rlinks": [{"href": "../README.txt", "media-type": "text/plain"}],
                    },
                    RES,
                ]},
            }
        });
        let path = self.dir.join("assessment-results.json");
        self.splice(&doc.to_string(), &path, [RES, OBS, FINDINGS])?;
        Ok(path)
    }
}
