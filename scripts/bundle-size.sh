#!/usr/bin/env bash
# Prints the gzip size of the hydrate bundle (wasm + js) that the release build produced.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/target/site/pkg"
size() { gzip -9 -c "$1" | wc -c; }
wasm=$(size "$pkg/engage.wasm")
js=$(size "$pkg/engage.js")
printf 'hydrate bundle (gzip -9): wasm %d B + js %d B = %d B (%.1f KiB)\n' "$wasm" "$js" $((wasm + js)) "$(echo "($wasm + $js) / 1024" | bc -l)"
