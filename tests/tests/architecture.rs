//! The architecture as checked rules, not hopes: the crates depend one way (core <- server
//! <- app), the core has no HTTP server and no desktop, no crate has a cycle among its
//! top-level modules, and the bottom layers of the core import nothing above them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pai_e2e::binary::repo_root;

/// A crate's top-level modules and which others each one names (`crate::x`).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if matches!(name.as_str(), "lib" | "main") {
            continue;
        }
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module {
            modules.insert(name, path);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, path)| {
            let mut uses = BTreeSet::new();
            for file in rust_files(path) {
                let text = std::fs::read_to_string(&file).unwrap();
                for line in text.lines() {
                    let code = line.split("//").next().unwrap_or("");
                    for (at, _) in code.match_indices("crate::") {
                        let rest = &code[at + "crate::".len()..];
                        let used: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if names.contains(&used) && &used != name {
                            uses.insert(used);
                        }
                    }
                }
            }
            (name.clone(), uses)
        })
        .collect()
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        files.extend(rust_files(&entry.unwrap().path()));
    }
    files.retain(|f| f.extension().is_some_and(|e| e == "rs"));
    files
}

/// A cycle in `graph`, if there is one, as the path that closes it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn crate_dirs() -> [(&'static str, PathBuf); 3] {
    let root = repo_root().join("src-tauri");
    [
        ("pai-core", root.join("core")),
        ("pai-server", root.join("server")),
        ("pai-orchestrator", root.clone()),
    ]
}

#[test]
fn no_crate_has_a_cycle_among_its_top_level_modules() {
    for (name, dir) in crate_dirs() {
        let graph = module_graph(&dir.join("src"));
        assert!(graph.len() > 3, "{name}: no modules found");
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{name}: modules import each other in a circle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_bottom_of_the_core_imports_nothing_above_it() {
    let graph = module_graph(&crate_dirs()[0].1.join("src"));
    let allowed: &[(&str, &[&str])] = &[
        ("types", &[]),
        ("wire", &[]),
        ("net", &[]),
        ("fsutil", &[]),
        ("bounded", &[]),
        ("models", &[]),
        ("config", &["types", "fsutil"]),
        ("store", &["fsutil"]),
        ("translate", &["wire"]),
    ];
    for (module, may_use) in allowed {
        let uses = &graph[*module];
        let extra: Vec<&String> = uses
            .iter()
            .filter(|u| !may_use.contains(&u.as_str()))
            .collect();
        assert!(extra.is_empty(), "{module} imports {extra:?}");
    }
}

#[test]
fn crates_depend_one_way_and_the_core_has_no_server_or_desktop() {
    let declared = |dir: &Path| -> toml::Table {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        ["dependencies", "build-dependencies"]
            .iter()
            .filter_map(|section| manifest.get(*section).and_then(|d| d.as_table()))
            .flat_map(|table| table.clone())
            .collect()
    };
    let dependencies = |dir: &Path| -> BTreeSet<String> { declared(dir).keys().cloned().collect() };
    let [core, server, app] = crate_dirs();
    let core_deps = dependencies(&core.1);
    for forbidden in ["axum", "tower", "tauri", "pai-server", "pai-orchestrator"] {
        assert!(
            !core_deps.contains(forbidden),
            "pai-core depends on {forbidden}"
        );
    }
    // hyper is the core's HTTP client; serving HTTP is the server crate's.
    for (name, spec) in declared(&core.1) {
        if !name.starts_with("hyper") {
            continue;
        }
        let spec = spec
            .as_table()
            .unwrap_or_else(|| panic!("{name}: declare its features"));
        assert!(
            spec.get("workspace").is_none(),
            "{name}: the workspace's features include the server"
        );
        let features = spec
            .get("features")
            .and_then(|f| f.as_array())
            .cloned()
            .unwrap_or_default();
        assert!(
            features
                .iter()
                .all(|f| !f.as_str().unwrap_or_default().starts_with("server")),
            "pai-core uses {name} as a server: {features:?}"
        );
    }
    assert!(!core_deps.iter().any(|d| d.starts_with("tauri")));
    let server_deps = dependencies(&server.1);
    assert!(server_deps.contains("pai-core"));
    for forbidden in ["pai-orchestrator", "tauri"] {
        assert!(
            !server_deps.contains(forbidden),
            "pai-server depends on {forbidden}"
        );
    }
    let app_deps = dependencies(&app.1);
    assert!(app_deps.contains("pai-core") && app_deps.contains("pai-server"));
}
