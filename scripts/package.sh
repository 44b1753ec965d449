#!/usr/bin/env bash
# Builds the installable packages of the tray app: a .deb and an .rpm with both binaries
# (pai-orchestrator, pai-orchestrator-tray), the icon, a desktop entry, the systemd user unit
# for headless use, and their dependencies (webkit2gtk, gtk3, appindicator) declared.
#   scripts/package.sh            release build; packages under target/release/bundle/
#   scripts/package.sh --debug    debug build (what the tests install); target/debug/bundle/
# AppImage is left out: Tauri's AppImage bundler downloads linuxdeploy and its plugins while
# it builds, and this project's machines reach only package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if ! cargo tauri --version >/dev/null 2>&1; then
  echo "package: installing tauri-cli from crates.io (once)"
  cargo install tauri-cli --version "^2" --locked
fi

# The packaged unit runs the installed binary with the user's default paths.
mkdir -p target/package
sed -e 's|@BINARY@|/usr/bin/pai-orchestrator|' \
    -e 's|@CONFIG@|%h/.config/pai-orchestrator/config.toml|' \
    -e 's|@DATA_DIR@|%h/.local/share/pai-orchestrator|' \
    -e 's|^# `pai-orchestrator install-service`.*$|# Installed by the package for every user; enable it for yourself with|' \
    -e 's|^# ~/.config/systemd/user/; then: |#   |' \
    scripts/pai-orchestrator.service > target/package/pai-orchestrator.service

cd src-tauri
# `--features gui` names the tray binary's required feature, so the bundler packs it too.
cargo tauri build --bundles deb,rpm --ci --features gui "$@"
