//! The mixed-load driver of `bench/scale.sh`: sends client updates (an email open each, so
//! every one is a real change the pipeline scores and decides on) and client reads
//! (`GET /api/v1/clients/{id}`, the client page's data) at fixed rates through the REST API
//! for a while (open loop: a slow answer does not slow the sending), samples the queue depth
//! and the server's memory every second, and afterwards reads from the database when each
//! update's score and decision were stored, giving update-to-decision latency.
//!
//!   loadgen --base http://127.0.0.1:3000 --key ek_… --db engage.db --pid 1234 \
//!           --rate 1000 --reads 200 --secs 300 [--warmup 30] --out loadgen.json
//!
//! With `--warmup N` the same load runs for N seconds first, unmeasured, so the figures
//! describe a server whose caches are warm.

use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Args {
    base: String,
    key: String,
    db: String,
    pid: u32,
    rate: u32,
    reads: u32,
    secs: u64,
    warmup: u64,
    out: String,
}

fn args() -> Args {
    let mut map = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (it.next(), it.next()) {
        map.insert(flag.trim_start_matches("--").to_owned(), value);
    }
    let get = |name: &str| {
        map.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("--{name} is required (see the file's header)"))
    };
    Args {
        base: get("base"),
        key: get("key"),
        db: get("db"),
        pid: get("pid").parse().expect("--pid is a process id"),
        rate: get("rate").parse().expect("--rate is updates per second"),
        reads: get("reads").parse().expect("--reads is reads per second"),
        secs: get("secs").parse().expect("--secs is a duration"),
        warmup: map
            .get("warmup")
            .map_or(0, |v| v.parse().expect("--warmup is a duration")),
        out: get("out"),
    }
}

/// The server's resident memory now, in KiB (VmRSS), and its peak so far (VmHWM).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() {
    let args = args();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("an HTTP client");
    // Clients to update: a few thousand ids from the list, spread over the book.
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    while ids.len() < 5_000 {
        let mut url = format!("{}/api/v1/clients?limit=200&sort=newest", args.base);
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(&args.key)
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a client page");
        for client in page["clients"].as_array().cloned().unwrap_or_default() {
            ids.push(client["id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(!ids.is_empty(), "the database has no clients");

    // Reads at their own fixed rate, each answer timed from its sending.
    let reads = (args.reads > 0).then(|| {
        let (http, base, key, ids) = (
            http.clone(),
            args.base.clone(),
            args.key.clone(),
            ids.clone(),
        );
        let warm = u64::from(args.reads) * args.warmup;
        let total = warm + u64::from(args.reads) * args.secs;
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.reads));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut answers = Vec::new();
            for n in 0..total {
                tick.tick().await;
                let url = format!(
                    "{base}/api/v1/clients/{}",
                    ids[(n as usize * 104_729 + 17) % ids.len()]
                );
                let (http, key) = (http.clone(), key.clone());
                let answer = tokio::spawn(async move {
                    let sent = Instant::now();
                    let ok = match http.get(url).bearer_auth(key).send().await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    (ok, sent.elapsed().as_secs_f64() * 1000.0)
                });
                if n >= warm {
                    answers.push(answer);
                }
            }
            let (mut times, mut failed) = (Vec::new(), 0u64);
            for answer in answers {
                match answer.await {
                    Ok((true, ms)) => times.push(ms),
                    _ => failed += 1,
                }
            }
            times.sort_by(f64::total_cmp);
            (times, failed)
        })
    });
    let mut started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let warm = u64::from(args.rate) * args.warmup;
    let total = warm + u64::from(args.rate) * args.secs;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let mut samples = Vec::new();
    let mut next_sample = Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        tick.tick().await;
        if n == warm {
            started = Instant::now();
            next_sample = started;
        }
        let id = ids[(n as usize * 7919) % ids.len()].clone();
        let (client, base, key, tx) = (
            http.clone(),
            args.base.clone(),
            args.key.clone(),
            (n >= warm).then(|| done_tx.clone()),
        );
        tokio::spawn(async move {
            let sent = chrono::Utc::now();
            let answer = client
                .post(format!("{base}/api/v1/clients/{id}/activities"))
                .bearer_auth(&key)
                .json(&serde_json::json!({"activity": {"type": "email_open"}}))
                .send()
                .await;
            let version = match answer {
                Ok(response) if response.status().is_success() => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["version"].as_u64()),
                _ => None,
            };
            if let Some(tx) = tx {
                let _ = tx.send((id, version, sent));
            }
        });
        if n >= warm && Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            let depth = http
                .get(format!("{}/api/v1/pipeline", args.base))
                .bearer_auth(&args.key)
                .send()
                .await
                .ok();
            let figures: serde_json::Value = match depth {
                Some(r) => r.json().await.unwrap_or_default(),
                None => serde_json::Value::Null,
            };
            let (rss, _) = memory_kib(args.pid);
            samples.push(serde_json::json!({
                "t": started.elapsed().as_secs_f64(),
                "queue": figures["events_queue"]["visible"].as_u64().unwrap_or(0)
                    + figures["events_queue"]["in_flight"].as_u64().unwrap_or(0),
                "feed_lag": figures["feed_lag"],
                "rss_kib": rss,
            }));
        }
    }
    drop(done_tx);
    let mut accepted = Vec::new();
    let mut refused = 0u64;
    while let Some((id, version, sent)) = done_rx.recv().await {
        match version {
            Some(version) => accepted.push((id, version, sent)),
            None => refused += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the pipeline finish, then read when each update was scored and decided.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let db =
        rusqlite::Connection::open_with_flags(&args.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the database opens read-only");
    let mut lookup = db
        .prepare("SELECT scored_at FROM score_changes WHERE event_id = ?1")
        .expect("the score_changes table");
    let mut latencies = Vec::new();
    let mut undecided = 0u64;
    // The slowest update sent in each second of the run, to see when the tail happened.
    let first_sent = accepted
        .iter()
        .map(|(_, _, sent)| sent.timestamp_millis())
        .min()
        .unwrap_or_default();
    let mut worst_by_second: Vec<f64> = vec![0.0; args.secs as usize + 1];
    for (id, version, sent) in &accepted {
        let event = domain::EventId::for_change(
            &domain::ClientId::new(id.clone()),
            *version,
            "client_updated",
        );
        match lookup.query_row([event.as_str()], |row| row.get::<_, i64>(0)) {
            Ok(scored_ms) => {
                let latency = (scored_ms - sent.timestamp_millis()) as f64;
                let second = ((sent.timestamp_millis() - first_sent) / 1000).max(0) as usize;
                if let Some(worst) = worst_by_second.get_mut(second) {
                    *worst = worst.max(latency);
                }
                latencies.push(latency);
            }
            Err(_) => undecided += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let (read_times, reads_failed) = match reads {
        Some(task) => task.await.expect("the reads finish"),
        None => (Vec::new(), 0),
    };
    let (_, peak_kib) = memory_kib(args.pid);
    let report = serde_json::json!({
        "sent": total - warm,
        "warmup_secs": args.warmup,
        "accepted": accepted.len(),
        "refused": refused,
        "seconds": elapsed,
        "rate": accepted.len() as f64 / elapsed,
        "decided": latencies.len(),
        "undecided": undecided,
        "latency_ms_p50": percentile(&latencies, 0.50),
        "latency_ms_p99": percentile(&latencies, 0.99),
        "latency_ms_max": latencies.last().copied().unwrap_or(f64::NAN),
        "latency_ms_worst_by_second": worst_by_second,
        "reads": read_times.len(),
        "reads_failed": reads_failed,
        "read_ms_p50": percentile(&read_times, 0.50),
        "read_ms_p99": percentile(&read_times, 0.99),
        "peak_rss_kib": peak_kib,
        "samples": samples,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report).unwrap())
        .expect("write the report");
    println!(
        "sent {}, accepted {}, decided {}; update-to-decision p50 {:.1} ms, p99 {:.1} ms; \
         reads {} ({} failed), p50 {:.1} ms, p99 {:.1} ms",
        total - warm,
        accepted.len(),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        read_times.len(),
        reads_failed,
        percentile(&read_times, 0.50),
        percentile(&read_times, 0.99)
    );
}
