#!/usr/bin/env bash
# `make run`: installs what is missing, builds the release app, and serves it on the
# embedded default (SQLite at $ENGAGE_DB), with demo data and demo accounts on first run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
set -euo pipefail
cd "$ENGAGE_ROOT"

build_release

export ENGAGE_DB="${ENGAGE_DB:-$ENGAGE_ROOT/data/engage.db}"
export ENGAGE_ADDR="${ENGAGE_ADDR:-127.0.0.1:3000}"
# `engage serve` adds demo data and accounts only when asked; `make run` asks, unless the
# caller said otherwise (ENGAGE_DEMO_DATA=false make run).
export ENGAGE_DEMO_DATA="${ENGAGE_DEMO_DATA:-true}"
echo "==> serving Engage at http://$ENGAGE_ADDR/ (database: $ENGAGE_DB; Ctrl-C stops it)" >&2
# The demo accounts are made (and printed) on the first start; later starts show them again.
accounts="$(dirname "$ENGAGE_DB")/demo-accounts.txt"
if [ -f "$accounts" ]; then cat "$accounts" >&2; fi
exec "$CARGO_TARGET_DIR/release/engage" serve "$@"
