#!/usr/bin/env bash
# Lighthouse scores of the first pages (see run.mjs). Installs the pinned Lighthouse on
# first use. Needs ENGAGE_BIN (the release engage binary) and Debian's chromium.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/node_modules/.bin/lighthouse" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "installing Lighthouse (bench/lighthouse/package-lock.json)" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/run.mjs"
