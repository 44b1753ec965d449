#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints (core and tray app), unit and
# integration tests, end-to-end tests with real clients against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests

echo "== cargo fmt"
cargo fmt --all -- --check

echo "== clippy (headless core and tests)"
cargo clippy --workspace --all-targets --no-default-features --locked -- -D warnings

echo "== clippy (tray app, feature gui)"
cargo clippy -p pai-orchestrator --all-targets --locked -- -D warnings

echo "== build the binaries the end-to-end tests start: the CLI and headless proxy, the tray app"
cargo build -p pai-orchestrator --locked
export PAI_GUI_BIN="$PWD/target/debug/pai-orchestrator-tray"

echo "== the packages the install test unpacks (.deb, .rpm; debug build)"
scripts/package.sh --debug

echo "== tests"
cargo nextest run --workspace --no-default-features --locked --no-fail-fast
