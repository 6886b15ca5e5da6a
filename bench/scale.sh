#!/usr/bin/env bash
# Issue 10's harness: Engage on the embedded default with a large book (1,000,000 clients
# by default), measured against this machine's own limits in the same run, and written
# into bench/REPORT.md (the section between the "scale" markers).
#
#   bench/scale.sh [CLIENTS]        # default 1000000; SCALE_RESEED=1 seeds afresh
#
# Steps: seed (time, database size) -> the pipeline scores everyone -> cold start ->
# wrk against a bare Axum "hello" and against API reads and SSR pages -> 5 minutes of 200
# client reads/s plus 1,000 updates/s (SCALE_READS, SCALE_RATE, SCALE_SECS; queue depth,
# memory, update-to-decision and read latency) -> a full rescore -> binary and bundle
# sizes. The database is kept under $ENGAGE_CACHE/scale-N so a rerun skips the seeding
# and the first scoring (about 12 minutes for a million here).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"
set -euo pipefail
cd "$ENGAGE_ROOT"

clients="${1:-1000000}"
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
command -v wrk >/dev/null || apt_install wrk

build_release
step "benchmark binaries (hello baseline, load generator)"
cargo build --release --locked -p engage-bench --bin hello --bin loadgen
bin="$CARGO_TARGET_DIR/release/engage"
hello="$CARGO_TARGET_DIR/release/hello"
loadgen="$CARGO_TARGET_DIR/release/loadgen"

work="$ENGAGE_CACHE/scale-$clients"
mkdir -p "$work"
export ENGAGE_DB="$work/engage.db" RUST_LOG=warn ENGAGE_OUTBOX_DIR="$work/outbox"
results="$work/results.txt"
: >"$results"
record() { printf '%s=%s\n' "$1" "$2" | tee -a "$results" >&2; }
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

server=""
stop_server() {
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
trap 'stop_server; [ -n "${hello_pid:-}" ] && kill "$hello_pid" 2>/dev/null || true' EXIT
start_server() {
  ENGAGE_API_RATE_PER_MINUTE=1000000 "$bin" serve --addr "127.0.0.1:$port" --demo-data false \
    >>"$work/serve.log" 2>&1 &
  server=$!
}
get() { python3 -c 'import sys, urllib.request; r = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]} if len(sys.argv) > 2 else {}); sys.stdout.write(urllib.request.urlopen(r, timeout=30).read().decode())' "$@"; }

# Polls /readyz until no event is waiting or in flight and the change feed is published.
wait_until_drained() {
  local figures
  while true; do
    kill -0 "$server" 2>/dev/null || { tail -n 20 "$work/serve.log" >&2; echo "the server stopped" >&2; exit 1; }
    figures=$(get "$base/readyz" 2>/dev/null || true)
    if [ -n "$figures" ] && python3 -c 'import json,sys; f=json.loads(sys.argv[1]); q=f["events_queue"]; sys.exit(0 if q["visible"]+q["in_flight"]==0 and f["feed_lag"]==0 else 1)' "$figures"; then
      return
    fi
    sleep 1
  done
}

# 1. Seed.
if [ "${SCALE_RESEED:-0}" = 1 ] || [ ! -f "$work/seeded" ]; then
  # The keys and the first scoring's time belong to the old database.
  rm -f "$ENGAGE_DB" "$ENGAGE_DB-wal" "$ENGAGE_DB-shm" "$work/seeded" "$work/keys" \
    "$work/catch-up-secs"
  step "seeding $clients clients"
  started=$(date +%s.%N)
  "$bin" seed --days 0 --clients "$clients"
  seed_secs=$(echo "$(date +%s.%N) - $started" | bc)
  echo "$seed_secs" >"$work/seed-secs"
  touch "$work/seeded"
fi
record seed_secs "$(cat "$work/seed-secs")"
record clients "$clients"

# Keys and an account for the pages (made once; kept with the database).
if [ ! -f "$work/keys" ]; then
  manager_key=$("$bin" apikey create --name "scale bench (manager)" --role manager | tail -n 1)
  printf 'correct horse battery staple\n' | "$bin" user add --email bench@engage.example --role manager >/dev/null
  echo "$manager_key" >"$work/keys"
fi
manager_key=$(cat "$work/keys")

# 2. The pipeline scores every client (first run) — wait until the queue and feed are empty.
# The time is kept with the database: on a reused one there is nothing left to score.
step "waiting for the pipeline to score everyone"
start_server
started=$(date +%s.%N)
wait_until_drained
if [ ! -f "$work/catch-up-secs" ]; then
  echo "$(date +%s.%N) - $started" | bc >"$work/catch-up-secs"
fi
record pipeline_catch_up_secs "$(cat "$work/catch-up-secs")"
record db_bytes "$(du -cb "$ENGAGE_DB"* | tail -n 1 | cut -f1)"
client_id=$(get "$base/api/v1/clients?limit=1" "$manager_key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["clients"][0]["id"])')
stop_server

# 3. Cold start: process start to the first successful client read.
step "cold start"
for run in 1 2 3; do
  python3 - "$bin" "$port" "$client_id" "$manager_key" >>"$work/cold.txt" <<'EOF'
import os, subprocess, sys, time, urllib.request
binary, port, client, key = sys.argv[1:]
start = time.monotonic()
p = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}", "--demo-data", "false"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/clients/{client}",
                                 headers={"Authorization": f"Bearer {key}"})
while True:
    try:
        if urllib.request.urlopen(request, timeout=5).status == 200:
            break
    except Exception:
        time.sleep(0.002)
print(f"{(time.monotonic() - start) * 1000:.1f}")
p.terminate(); p.wait()
EOF
done
record cold_start_ms "$(sort -n "$work/cold.txt" | tail -n 3 | sed -n 2p)"
rm -f "$work/cold.txt"

# 4. wrk: the bare handler, API reads and pages, 64 connections, 10 s each.
wrk_run() { # name, url, extra header
  local out
  out=$(wrk -t2 -c64 -d10s --latency -H "$3" "$2")
  record "${1}_rps" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  record "${1}_p99" "$(echo "$out" | awk '$1 == "99%" {print $2}')"
}
step "wrk: bare Axum hello (baseline)"
"$hello" "127.0.0.1:$((port + 1))" &
hello_pid=$!
sleep 0.5
wrk_run hello "http://127.0.0.1:$((port + 1))/" "X-Bench: 1"
kill "$hello_pid"
hello_pid=""
start_server
sleep 2
session=$(python3 - "$base" <<'EOF'
import sys, urllib.parse, urllib.request
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
opener = urllib.request.build_opener(Keep)
form = urllib.parse.urlencode({"email": "bench@engage.example", "password": "correct horse battery staple"}).encode()
try:
    opener.open(sys.argv[1] + "/signin", form)
except urllib.error.HTTPError as answer:
    cookie = answer.headers.get("Set-Cookie", "")
    print(cookie.split(";")[0])
EOF
)
step "wrk: API and pages"
wrk_run api_client_by_id "$base/api/v1/clients/$client_id" "Authorization: Bearer $manager_key"
wrk_run api_list "$base/api/v1/clients?limit=25" "Authorization: Bearer $manager_key"
wrk_run api_list_at_risk "$base/api/v1/clients?limit=25&sort=score_lowest&band=at_risk" "Authorization: Bearer $manager_key"
wrk_run page_clients "$base/" "Cookie: $session"
wrk_run page_client "$base/clients/$client_id" "Cookie: $session"
wrk_run page_dashboard "$base/dashboard" "Cookie: $session"

# 5. Mixed load: client reads plus 1,000 updates/s for 5 minutes, both at fixed rates (open
# loop), so the figures say whether the server keeps up with a stated load rather than how
# a closed loop of readers shares the two cores with the pipeline. The same load runs for
# 30 s first, unmeasured, so the caches are warm.
step "mixed load: ${SCALE_READS:-200} reads/s plus ${SCALE_RATE:-1000} updates/s for ${SCALE_SECS:-300} s"
stop_server
start_server
sleep 2
"$loadgen" --base "$base" --key "$manager_key" --db "$ENGAGE_DB" --pid "$server" \
  --rate "${SCALE_RATE:-1000}" --reads "${SCALE_READS:-200}" --secs "${SCALE_SECS:-300}" \
  --warmup 30 --out "$work/mixed.json"
python3 - "$work/mixed.json" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["samples"]
half = len(s) // 2
first = max((x["queue"] for x in s[:half]), default=0)
second = max((x["queue"] for x in s[half:]), default=0)
mib = lambda xs: f"{max(x['rss_kib'] for x in xs) / 1024:.0f}" if xs else ""
print(f"mixed_update_rate={r['rate']:.0f}")
print(f"mixed_accepted={r['accepted']}")
print(f"mixed_decided={r['decided']}")
print(f"mixed_latency_p50_ms={r['latency_ms_p50']:.1f}")
print(f"mixed_latency_p99_ms={r['latency_ms_p99']:.1f}")
print(f"mixed_queue_max_first_half={first}")
print(f"mixed_queue_max_second_half={second}")
print(f"mixed_read_rps={r['reads'] / r['seconds']:.0f}")
print(f"mixed_reads_failed={r['reads_failed']}")
print(f"mixed_read_p50_ms={r['read_ms_p50']:.1f}")
print(f"mixed_read_p99_ms={r['read_ms_p99']:.1f}")
print(f"mixed_rss_first_mib={mib(s[:1])}")
print(f"mixed_rss_first_half_max_mib={mib(s[:half])}")
print(f"mixed_rss_second_half_max_mib={mib(s[half:])}")
print(f"mixed_rss_last_mib={mib(s[-1:])}")
print(f"peak_rss_mib={r['peak_rss_kib'] / 1024:.0f}")
EOF
stop_server

# 6. Full rescore: queue every client, then the server scores them; the time until the
# queue is empty again.
step "full rescore"
started=$(date +%s.%N)
"$bin" rescore
start_server
sleep 1
wait_until_drained
record rescore_secs "$(echo "$(date +%s.%N) - $started" | bc)"
stop_server

# The pure scoring throughput in this run (criterion), the ceiling a rescore is compared to.
step "scoring throughput (cargo bench --bench scoring)"
scoring=$(cargo bench -q -p engage-bench --bench scoring -- score_10k_clients 2>/dev/null)
record scoring_per_sec "$(echo "$scoring" | awk '/thrpt:/ && !seen {v=$(NF-3); u=$(NF-2); seen=1} END {m=1; if (u ~ /^Melem/) m=1e6; else if (u ~ /^Kelem/) m=1e3; else if (u ~ /^Gelem/) m=1e9; print v*m}')"

# 7. Sizes.
record engage_binary_bytes "$(stat -c %s "$bin")"
strip -o "$work/engage-stripped" "$bin"
record engage_stripped_bytes "$(stat -c %s "$work/engage-stripped")"
rm -f "$work/engage-stripped"
bundle=$("$ENGAGE_ROOT/scripts/bundle-size.sh")
record bundle_gzip_bytes "$(echo "$bundle" | sed -E 's/.*= ([0-9]+) B.*/\1/')"

step "writing bench/REPORT.md"
python3 bench/scale_report.py "$results" bench/REPORT.md
