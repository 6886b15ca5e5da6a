#!/usr/bin/env bash
# Builds the five Lambda artifacts for arm64 (target/lambda/<name>/bootstrap, as
# deploy/template.yaml's CodeUri names them) with cargo-lambda, after the release build made
# the site (target/site): the web function embeds it, so its pages ask for the bundle under
# the content-hashed name the site export uploads. Run after `cargo leptos build --release`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
set -euo pipefail
cd "$ENGAGE_ROOT"
# cargo-lambda and zig (its linker for arm64) come from the venv.
export PATH="$ENGAGE_VENV/bin:$PATH"
lambda_dir="$ENGAGE_ROOT/target/lambda"

step "cargo lambda build --release --arm64: the stream, email and views functions (engage-aws)"
cargo lambda build --release --arm64 --locked --lambda-dir "$lambda_dir" -p engage-aws \
  --bin engage-stream-lambda --bin engage-email-lambda --bin engage-views-lambda

step "cargo lambda build --release --arm64: the web and rescore functions (engage, with the site)"
LEPTOS_SITE_ROOT=target/site cargo lambda build --release --arm64 --locked --lambda-dir "$lambda_dir" -p engage \
  --bin engage-web-lambda --bin engage-rescore-lambda

for name in engage-stream-lambda engage-email-lambda engage-views-lambda engage-web-lambda engage-rescore-lambda; do
  printf '%s: %s\n' "$name" "$(du -h "$lambda_dir/$name/bootstrap" | cut -f1)"
done
