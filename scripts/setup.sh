#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build, run and test PAI Orchestrator:
# Tauri's system libraries, Xvfb, a Python venv with the official SDKs, Claude Code's CLI.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config curl file ca-certificates
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev
  xvfb xauth dbus
  python3-venv
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: Rust is missing; install it from https://rustup.rs and run this again" >&2
  exit 1
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest (the test runner)"
  cargo install cargo-nextest --locked
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import anthropic, openai" 2>/dev/null; then
  echo "setup: creating .venv with the anthropic and openai SDKs"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi

if [ ! -x tests/node/node_modules/.bin/claude ]; then
  echo "setup: installing Claude Code's CLI into tests/node"
  (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: ready"
