"""Writes bench/scale.sh's figures into bench/REPORT.md, between the "scale" markers
(replacing what a previous run wrote there), with the targets of issue 10 checked.

    python3 bench/scale_report.py RESULTS.txt bench/REPORT.md
"""

import datetime
import os
import platform
import sys

BEGIN = "<!-- scale:begin (written by bench/scale.sh; do not edit by hand) -->"
END = "<!-- scale:end -->"


def figures(path):
    out = {}
    for line in open(path):
        if "=" in line:
            key, value = line.strip().split("=", 1)
            out[key] = value
    return out


def ms(text):
    """wrk's latency ("1.23ms", "850.00us", "1.02s") in milliseconds."""
    text = text.strip()
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


def number(f, key):
    try:
        return float(f[key])
    except (KeyError, ValueError):
        return float("nan")


def verdict(ok):
    return "**met**" if ok else "**not met**"


def machine():
    cores = os.cpu_count()
    memory = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cores} cores ({cpu}){memory}, {platform.system()} {platform.release()}"


def section(f):
    hello = number(f, "hello_rps")
    rows = []
    for key, label in (
        ("api_client_by_id", "`GET /api/v1/clients/{id}` (API key)"),
        ("api_list", "`GET /api/v1/clients?limit=25`"),
        ("api_list_at_risk", "`GET /api/v1/clients?limit=25&sort=score_lowest&band=at_risk`"),
        ("page_clients", "SSR `/` clients list (session)"),
        ("page_client", "SSR `/clients/{id}`"),
        ("page_dashboard", "SSR `/dashboard`"),
    ):
        rps = number(f, f"{key}_rps")
        rows.append(
            f"| {label} | {rps:,.0f} | {rps / hello:.1%} | {ms(f.get(key + '_p99', '')):.2f} ms |"
        )
    by_id = number(f, "api_client_by_id_rps") / hello
    by_id_p99 = ms(f.get("api_client_by_id_p99", ""))
    page_p99 = max(ms(f.get(k + "_p99", "")) for k in ("page_clients", "page_client", "page_dashboard"))
    p99_update = number(f, "mixed_latency_p99_ms")
    first_q = number(f, "mixed_queue_max_first_half")
    second_q = number(f, "mixed_queue_max_second_half")
    rss_first = number(f, "mixed_rss_first_mib")
    rss_last = number(f, "mixed_rss_last_mib")
    rss_half1 = number(f, "mixed_rss_first_half_max_mib")
    rss_half2 = number(f, "mixed_rss_second_half_max_mib")
    peak = number(f, "peak_rss_mib")
    cold = number(f, "cold_start_ms")
    bundle = number(f, "bundle_gzip_bytes")
    clients = int(number(f, "clients"))
    rescore = number(f, "rescore_secs")
    lines = [
        BEGIN,
        "## One million clients on one machine (issue 10)",
        "",
        f"Command: `bench/scale.sh {clients}` (one command: builds, seeds or reuses the "
        f"database under `$ENGAGE_CACHE/scale-{clients}`, measures, rewrites this section). "
        f"Run {datetime.date.today().isoformat()} on {machine()}. HTTP figures from `wrk -t2 "
        "-c64 -d10s --latency` against the release server on loopback, as ratios to a bare "
        "Axum \"hello\" handler (`bench/src/bin/hello.rs`) measured the same way in the same run.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| clients | {clients:,} |",
        f"| seed time (`engage seed`) | {number(f, 'seed_secs'):,.0f} s |",
        f"| pipeline scores everyone after the seed | {number(f, 'pipeline_catch_up_secs'):,.0f} s |",
        f"| database size (with WAL) | {number(f, 'db_bytes') / 1e9:.2f} GB |",
        f"| bare Axum hello (baseline) | {hello:,.0f} req/s, p99 {ms(f.get('hello_p99', '')):.2f} ms |",
        "",
        "| endpoint | req/s | ratio to hello | p99 |",
        "|---|---|---|---|",
        *rows,
        "",
        "Mixed load (`bench/src/bin/loadgen.rs`): client reads (`GET /api/v1/clients/{id}`, "
        "the client page's data, spread over 5,000 clients) and updates (an email open each, "
        "through `POST /api/v1/clients/{id}/activities`), both at fixed rates (open loop), after 30 s of the same load unmeasured; "
        "update-to-decision is from the moment the update was sent to the stored score and "
        "policy decision of its event, read from the database afterwards.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| updates accepted / decided | {f.get('mixed_accepted')} / {f.get('mixed_decided')} at {number(f, 'mixed_update_rate'):,.0f}/s |",
        f"| reads meanwhile | {number(f, 'mixed_read_rps'):,.0f} req/s, {f.get('mixed_reads_failed')} failed, p50 {number(f, 'mixed_read_p50_ms'):.1f} ms, p99 {number(f, 'mixed_read_p99_ms'):.1f} ms |",
        f"| update-to-decision p50 / p99 | {number(f, 'mixed_latency_p50_ms'):.1f} / {p99_update:.1f} ms |",
        f"| queue depth, max in first / second half | {first_q:,.0f} / {second_q:,.0f} |",
        f"| server RSS at start / max in first half / max in second half / end / peak | {rss_first:,.0f} / {rss_half1:,.0f} / {rss_half2:,.0f} / {rss_last:,.0f} / {peak:,.0f} MiB |",
        f"| full rescore (`engage rescore`, then the server drains the queue) | {rescore:,.0f} s = {clients / rescore:,.0f} clients/s |",
        f"| pure scoring in the same run (criterion, one thread) | {number(f, 'scoring_per_sec'):,.0f} scores/s; the rescore runs at {clients / rescore / number(f, 'scoring_per_sec'):.2%} of it |",
        f"| cold start to the first client read (median of 3) | {cold:.0f} ms |",
        f"| `engage` binary (with symbols / stripped) | {number(f, 'engage_binary_bytes') / 1e6:.1f} / {number(f, 'engage_stripped_bytes') / 1e6:.1f} MB |",
        f"| hydrate bundle, wasm + js, gzip -9 | {bundle / 1000:,.0f} KB |",
        "",
        "| target | result |",
        "|---|---|",
        f"| client by id ≥ 40% of the bare handler | {by_id:.1%}: {verdict(by_id >= 0.40)} |",
        f"| client by id p99 < 10 ms | {by_id_p99:.2f} ms: {verdict(by_id_p99 < 10)} |",
        f"| SSR pages p99 < 25 ms | worst {page_p99:.2f} ms: {verdict(page_p99 < 25)} |",
        f"| 1,000 updates/s sustained, no queue growth | {number(f, 'mixed_update_rate'):,.0f}/s, queue max {first_q:,.0f} then {second_q:,.0f}: {verdict(number(f, 'mixed_update_rate') >= 990 and second_q <= max(first_q, 1000))} |",
        f"| no memory growth under the mixed load (second half's max within 10% of the first's; the first half includes warming the caches) | {rss_half1:,.0f} → {rss_half2:,.0f} MiB: {verdict(rss_half2 <= rss_half1 * 1.1)} |",
        f"| update-to-decision p99 < 200 ms | {p99_update:.1f} ms: {verdict(p99_update < 200)} |",
        f"| cold start < 150 ms | {cold:.0f} ms: {verdict(cold < 150)} |",
        f"| peak RSS < 150 MB | {peak:,.0f} MiB: {verdict(peak * 1.048576 < 150)} |",
        f"| hydrate bundle ≤ 250 KB | {bundle / 1000:,.0f} KB: {verdict(bundle <= 250_000)} |",
        END,
    ]
    return "\n".join(lines) + "\n"


def main():
    f = figures(sys.argv[1])
    report = open(sys.argv[2]).read()
    new = section(f)
    if BEGIN in report and END in report:
        head, rest = report.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        report = head + new + tail.lstrip("\n")
    else:
        report = report.rstrip("\n") + "\n\n" + new
    open(sys.argv[2], "w").write(report)
    print(new)


if __name__ == "__main__":
    main()
