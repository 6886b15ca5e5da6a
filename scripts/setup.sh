#!/usr/bin/env bash
# Installs whatever Engage's build and tests need and is missing on this machine, then
# exports the environment the other scripts use. Every step is skipped when already
# satisfied, so a second run takes seconds. Source it: `. scripts/setup.sh`.
#
# Needs only the package registries: crates.io, npm, PyPI and Debian's packages.

set -euo pipefail

ENGAGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGAGE_CACHE="${ENGAGE_CACHE:-$HOME/.cache/engage}"
# Cargo's build output lives outside the clone so fresh clones build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ENGAGE_CACHE/target}"
# CI builds each fresh clone once: incremental state (kept per clone path) would only pile
# up in the shared target directory.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
export PATH="$HOME/.cargo/bin:$ENGAGE_ROOT/end2end/node_modules/.bin:$PATH"
export ENGAGE_ROOT ENGAGE_CACHE
mkdir -p "$ENGAGE_CACHE"

CARGO_LEPTOS_VERSION=0.3.8
BINARYEN_VERSION=132

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Cargo never prunes the shared target directory: incremental caches and test binaries of
# old builds piled up to 66 GB here and filled the disk. Past 30 GB the debug build goes
# (rebuilt in a few minutes; release and wasm builds stay).
debug_dir="$CARGO_TARGET_DIR/debug"
if [ -d "$debug_dir" ] && [ "$(du -sk "$debug_dir" | cut -f1)" -gt $((30 * 1024 * 1024)) ]; then
  step "pruning $debug_dir (over 30 GB)"
  rm -rf "$debug_dir"
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

lock_version() {
  # The version of crate $1 pinned in Cargo.lock.
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ENGAGE_ROOT/Cargo.lock"
}

for target in wasm32-unknown-unknown aarch64-unknown-linux-gnu; do
  if ! rustup target list --installed | grep -qx "$target"; then
    step "adding the $target target (the browser bundle; the arm64 Lambda functions)"
    rustup target add "$target"
  fi
done

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  step "installing cargo-leptos $CARGO_LEPTOS_VERSION (once per machine; about 20 minutes on 2 cores)"
  cargo install cargo-leptos@"$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

WASM_BINDGEN_VERSION="$(lock_version wasm-bindgen)"
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (the version in Cargo.lock)"
  cargo install wasm-bindgen-cli@"$WASM_BINDGEN_VERSION" --locked
fi

command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# playwright-core and axe-core (browser tests) and binaryen (wasm-opt for the release bundle).
if ! wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION" \
  || [ ! -d "$ENGAGE_ROOT/end2end/node_modules/playwright-core" ] \
  || [ ! -d "$ENGAGE_ROOT/end2end/node_modules/axe-core" ] \
  || [ "$ENGAGE_ROOT/end2end/package-lock.json" -nt "$ENGAGE_ROOT/end2end/node_modules/.package-lock.json" ]; then
  step "installing the npm packages of end2end/ (playwright-core, axe-core, binaryen)"
  (cd "$ENGAGE_ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Debian's Chromium for the browser tests (never a browser download).
[ -x /usr/bin/chromium ] || apt_install chromium
export ENGAGE_CHROMIUM=/usr/bin/chromium

# qemu's user mode and the arm64 C library, to run the arm64 Lambda artifacts in the
# deploy check (deploy/check_artifacts.py).
apt_install qemu-user libc6-arm64-cross

# A Python venv for the AWS-mode tests: moto_server speaks DynamoDB, Streams, SNS and SQS;
# cfn-lint with the SAM translator checks deploy/template.yaml offline; schemathesis and
# openapi-spec-validator check the REST API against its OpenAPI document.
ENGAGE_VENV="$ENGAGE_CACHE/venv"
# cargo-lambda (with zig, its cross-linker, from PyPI: no download at run time) builds the
# arm64 Lambda artifacts.
if [ ! -x "$ENGAGE_VENV/bin/moto_server" ] || [ ! -x "$ENGAGE_VENV/bin/cfn-lint" ] \
  || ! "$ENGAGE_VENV/bin/python" -c "import samtranslator" 2>/dev/null \
  || [ ! -x "$ENGAGE_VENV/bin/schemathesis" ] || [ ! -x "$ENGAGE_VENV/bin/openapi-spec-validator" ] \
  || [ ! -x "$ENGAGE_VENV/bin/cargo-lambda" ]; then
  step "installing moto[server], cfn-lint, aws-sam-translator, schemathesis, openapi-spec-validator and cargo-lambda in the venv $ENGAGE_VENV"
  [ -x "$ENGAGE_VENV/bin/python" ] || python3 -m venv "$ENGAGE_VENV" 2>/dev/null \
    || { apt_install python3-venv; python3 -m venv "$ENGAGE_VENV"; }
  "$ENGAGE_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]" cfn-lint aws-sam-translator \
    "schemathesis==4.32.5" openapi-spec-validator "cargo-lambda==1.9.2"
fi
export ENGAGE_VENV

# The release build: site first (precompressed), then the server that embeds it.
build_release() {
  step "release build (cargo leptos build --release --precompress)"
  (cd "$ENGAGE_ROOT" && cargo leptos build --release --precompress)
  "$ENGAGE_ROOT/scripts/bundle-size.sh"
}

set +euo pipefail
