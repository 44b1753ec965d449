#!/usr/bin/env bash
# Sets up (first time only), builds and runs PAI Orchestrator: the tray app where there is
# a display, the headless proxy where there is none. Extra arguments go to the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -p pai-orchestrator -- "$@"
