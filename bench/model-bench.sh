#!/usr/bin/env bash
# Scoring throughput and BG/NBD fit time, with the fit compared in the same run against
# Python's `lifetimes` on the same 100,000 customers. Results go in bench/REPORT.md.
#
#   bench/model-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if ! "$ENGAGE_VENV/bin/python" -c "import lifetimes" 2>/dev/null; then
  echo "==> installing lifetimes into $ENGAGE_VENV" >&2
  "$ENGAGE_VENV/bin/pip" install --quiet --disable-pip-version-check lifetimes
fi
cargo bench -p engage-bench --bench scoring -- --noplot
cargo bench -p engage-bench --bench bgnbd -- --noplot
"$ENGAGE_VENV/bin/python" bench/lifetimes_compare.py \
  "$CARGO_TARGET_DIR/tmp/bgnbd" "$CARGO_TARGET_DIR/criterion"
