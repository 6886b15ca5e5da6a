#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every check: formatting, the AWS
# template, clippy (server and browser builds), all Rust tests, the release build, the
# arm64 Lambda artifacts and their check under qemu against moto, the REST API against its
# OpenAPI document (schemathesis), the browser tests against the freshly built release
# server on a temporary database and on the AWS backend (moto), and the crash test.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
set -euo pipefail
cd "$ENGAGE_ROOT"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "deploy/template.yaml: cfn-lint and resource checks"
"$ENGAGE_VENV/bin/python" deploy/check_template.py

step "engage-aws links no SQLite: the AWS functions build on the ports crate alone"
if cargo tree -p engage-aws -e normal,build --prefix none --locked | grep -E '^(rusqlite|libsqlite3-sys|store) '; then
  echo "engage-aws depends on the SQLite store (above): the AWS side must reach storage through ports" >&2
  exit 1
fi

step "cargo clippy (native, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy (browser build of app, wasm32)"
cargo clippy -p app --lib --no-default-features --features hydrate --target wasm32-unknown-unknown --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

build_release
step "the hydrate bundle within its budget (250 KB gzip -9, issue 22)"
scripts/bundle-size.sh --max 250000

step "the five Lambda artifacts for arm64 (scripts/lambda-build.sh: cargo lambda build --release --arm64)"
bash scripts/lambda-build.sh

step "the Lambda artifacts as deployed (deploy/check_artifacts.py: qemu, each function's own IAM policy, moto)"
"$ENGAGE_VENV/bin/python" deploy/check_artifacts.py --engage "$CARGO_TARGET_DIR/release/engage"

step "REST API: OpenAPI 3.1 validation and schemathesis (scripts/api-check.sh)"
ENGAGE_BIN="$CARGO_TARGET_DIR/release/engage" scripts/api-check.sh

step "browser tests (end2end/)"
ENGAGE_BIN="$CARGO_TARGET_DIR/release/engage" node end2end/run.mjs

step "the whole browser suite on the AWS backend (moto_server, end2end/tests/ and end2end/aws/)"
ENGAGE_BIN="$CARGO_TARGET_DIR/release/engage" node end2end/run.mjs --backend aws

step "crash test (SIGKILL at random moments, end2end/crash.mjs)"
ENGAGE_BIN="$CARGO_TARGET_DIR/release/engage" node end2end/crash.mjs
