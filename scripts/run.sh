#!/usr/bin/env bash
# Sets up (first time only), builds and runs PAI Orchestrator: the tray app where there is
# a display, the headless proxy where there is none. Extra arguments go to the binary.
# Builds both binaries: pai-orchestrator (command line, headless proxy) hands over to
# pai-orchestrator-tray when there is a display.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p pai-orchestrator
exec "${CARGO_TARGET_DIR:-target}/release/pai-orchestrator" "$@"
