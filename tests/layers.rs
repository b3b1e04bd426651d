//! The layer order of docs/ARCHITECTURE.md, checked on the sources: a module imports only
//! modules of its own layer or below (`crate::…` paths outside tests), and no two modules
//! import each other, directly or around a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers from the bottom; the binary's `cli` sits above them all and imports `evident::`.
const LAYERS: &[&[&str]] = &[
    &[
        "catalog", "csv", "when", "lock", "progress", "schedule", "findings", "metrics", "objects",
    ],
    &["ledger"],
    &["anchor", "verify", "tiles"],
    &["config"],
    &["mapping", "coverage", "soa", "sampling", "lineage"],
    &["recorder", "runner", "bundle", "status", "erasure"],
    &["alerts", "api", "witness", "agent"],
    &["daemon"],
];

fn sources(path: &Path, out: &mut String) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            sources(&e.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        // Tests may reach anywhere.
        out.push_str(text.split("#[cfg(test)]").next().unwrap());
    }
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" || name == "cli" {
            continue;
        }
        let mut text = String::new();
        sources(&path, &mut text);
        let deps: BTreeSet<String> = text
            .match_indices("crate::")
            .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            .map(|(i, _)| {
                text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|d| *d != name)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

#[test]
fn modules_import_only_downhill_and_never_in_a_loop() {
    let graph = imports();
    let rank = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    for (m, deps) in &graph {
        let Some(r) = rank(m) else {
            panic!("module {m} is in no layer: add it to LAYERS and to docs/ARCHITECTURE.md");
        };
        for d in deps {
            let dr = rank(d).unwrap_or_else(|| panic!("{m} imports {d}, which is in no layer"));
            assert!(
                dr <= r,
                "{m} (layer {r}) imports {d} (layer {dr}), a higher layer"
            );
        }
    }
    // Within a layer, no loop either: walk every path.
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for d in graph.get(&at).into_iter().flatten() {
                assert!(d != start, "import cycle: {} -> {start}", path.join(" -> "));
                if !path.contains(d) {
                    let mut p = path.clone();
                    p.push(d.clone());
                    stack.push((d.clone(), p));
                }
            }
        }
    }
}
