#!/usr/bin/env bash
# How long the demo's replayed past takes (`engage seed`, 300 clients, 90 days, SQLite),
# against the baseline of the same 300 clients written as of now with no past
# (`engage seed --days 0`), each on a fresh database, alternating, RUNS times (this machine
# is noisy: compare the ratio). Needs the release binary. Results go in bench/REPORT.md.
#
#   bench/replay-bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${ENGAGE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/engage/target}/release/engage}"
runs="${1:-5}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seconds() {
  rm -f "$work"/engage.db*
  local started ended
  started=$(date +%s.%N)
  "$bin" --db "$work/engage.db" seed "$@" > "$work/out" 2> /dev/null
  ended=$(date +%s.%N)
  echo "$ended - $started" | bc
}
: > "$work/base"
: > "$work/replay"
for run in $(seq "$runs"); do
  seconds --days 0 --clients 300 >> "$work/base"
  seconds --days 90 --clients 300 >> "$work/replay"
  echo "run $run: baseline $(tail -1 "$work/base") s, replay $(tail -1 "$work/replay") s"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median "$work/base")
replay=$(median "$work/replay")
echo "what the replay printed: $(cat "$work/out")"
printf 'median: baseline %.2f s, replay %.2f s, ratio %.1f\n' "$base" "$replay" "$(echo "$replay / $base" | bc -l)"
