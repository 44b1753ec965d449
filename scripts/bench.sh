#!/usr/bin/env bash
# The benchmarks behind README's performance table: PAI Orchestrator's release binary
# measured against a direct mock upstream and nginx as a reverse proxy, in one run.
#   scripts/bench.sh [--quick] [--tray] [proxy|stream|startup|queue|translate|classify]…
# nginx and wrk come from Debian (nginx-light, wrk); --tray also measures the tray app under
# Xvfb (scripts/setup.sh --tests installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ " $* " == *" --tray "* ]]; then
  cargo build --release --locked -p pai-orchestrator
else
  cargo build --release --locked -p pai-orchestrator --no-default-features
fi
exec cargo run --release --locked -q -p pai-e2e --bin bench -- "$@"
