#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints (core and tray app), unit and
# integration tests, end-to-end tests with real clients against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== cargo fmt"
cargo fmt --all -- --check

echo "== clippy (headless core and tests)"
cargo clippy --workspace --all-targets --no-default-features --locked -- -D warnings

echo "== build the headless binary the end-to-end tests drive"
cargo build -p pai-orchestrator --no-default-features --locked

echo "== clippy (tray app, feature gui)"
cargo clippy -p pai-orchestrator --all-targets --locked -- -D warnings

echo "== tests"
cargo nextest run --workspace --no-default-features --locked --no-fail-fast
