//! The .deb that `scripts/package.sh` builds (the test script builds it before the tests),
//! installed into a clean root with `dpkg-deb -x`: what it holds, what it declares, and the
//! installed binary serving `/health` headless.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pai_e2e::binary::{repo_root, Running};
use pai_e2e::http::get_json;

/// The newest .deb under target/{debug,release}/bundle/deb/.
fn built_deb() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let debs: Vec<PathBuf> = ["debug", "release"]
        .iter()
        .filter_map(|profile| std::fs::read_dir(target.join(profile).join("bundle/deb")).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.into_iter()
        .max_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .expect("no .deb under target/*/bundle/deb: run scripts/package.sh --debug first (scripts/test.sh does)")
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let output = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_deb_installs_both_binaries_the_desktop_entry_and_the_unit_and_runs_headless() {
    let deb = built_deb();
    // Every control field: Package, Depends, …
    let fields = dpkg_deb(&["-f"], &deb);
    assert!(fields.contains("Package: pai-orchestrator"), "{fields}");
    for dependency in ["libwebkit2gtk-4.1-0", "libgtk-3-0"] {
        assert!(
            fields.contains(dependency),
            "{dependency} not declared: {fields}"
        );
    }
    assert!(
        fields.contains("appindicator3"),
        "the tray needs an appindicator: {fields}"
    );

    let root = tempfile::tempdir().unwrap();
    let extracted = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(extracted.success());
    for file in [
        "usr/bin/pai-orchestrator",
        "usr/bin/pai-orchestrator-tray",
        "usr/lib/systemd/user/pai-orchestrator.service",
    ] {
        assert!(root.path().join(file).is_file(), "{file} is missing");
    }
    let desktop = std::fs::read_dir(root.path().join("usr/share/applications"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .next()
        .expect("a desktop entry");
    assert!(desktop.contains("Exec=pai-orchestrator"), "{desktop}");
    assert!(desktop.contains("Icon="), "{desktop}");
    let icons = root.path().join("usr/share/icons/hicolor");
    assert!(icons.is_dir(), "no icon installed");
    let unit = std::fs::read_to_string(
        root.path()
            .join("usr/lib/systemd/user/pai-orchestrator.service"),
    )
    .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/pai-orchestrator --headless --config %h/.config/pai-orchestrator/config.toml --data-dir %h/.local/share/pai-orchestrator"),
        "{unit}"
    );

    // Installed, it runs headless and answers /health.
    let home = tempfile::tempdir().unwrap();
    let mut running = Running::start_binary(
        &root.path().join("usr/bin/pai-orchestrator"),
        &home.path().join("config.toml"),
        &home.path().join("data"),
    );
    let health: serde_json::Value = get_json(&running.url("/health")).await;
    assert_eq!(health["status"], "ok");
    assert!(running.terminate().success());
}
