#!/usr/bin/env bash
# Server-side render time of every page on the demo data, against a bare Axum handler in
# the same run; three runs (this machine is noisy). Results go in bench/REPORT.md.
#
#   bench/pages-bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/engage/target}"
runs="${1:-3}"
for run in $(seq "$runs"); do
  echo "== run $run of $runs"
  cargo bench -q -p engage-bench --bench pages 2>/dev/null | grep -v '^$'
done
