#!/usr/bin/env bash
# Prints the gzip size of the hydrate bundle (wasm + js) that the release build produced.
# With `--max BYTES` it also fails when the bundle is larger (the test command checks the
# 250 KB budget of issue 22 this way).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/target/site/pkg"
max=""
if [ "${1:-}" = "--max" ]; then
  max="${2:?--max needs a number of bytes}"
fi
size() { gzip -9 -c "$1" | wc -c; }
wasm=$(size "$pkg/engage.wasm")
js=$(size "$pkg/engage.js")
total=$((wasm + js))
printf 'hydrate bundle (gzip -9): wasm %d B + js %d B = %d B (%.1f KiB)\n' "$wasm" "$js" "$total" "$(echo "$total / 1024" | bc -l)"
if [ -n "$max" ] && [ "$total" -gt "$max" ]; then
  echo "the hydrate bundle is over its budget of $max B (bench/REPORT.md says what it is made of)" >&2
  exit 1
fi
