#!/usr/bin/env bash
# End-to-end pipeline throughput and latency with the raw SQLite ceiling, five runs
# (this machine is noisy; REPORT.md quotes the median). Results go in bench/REPORT.md.
#
#   bench/pipeline-bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/engage/target}"
runs="${1:-5}"
for run in $(seq "$runs"); do
  echo "== run $run of $runs"
  cargo bench -q -p engage-bench --bench pipeline 2>/dev/null | grep -v '^$'
done
