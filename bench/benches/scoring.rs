//! Engagement-score throughput on realistic clients, single-threaded (one core).
//!
//! `walk` is the baseline measured in the same run: one pass over the same records touching
//! every Fix, the least any scoring must do. REPORT.md gives score/walk as a ratio.
//! Run: `cargo bench -p engage-bench --bench scoring`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::score::score_profile;
use engage_bench::{bench_now, sample_clients};
use std::hint::black_box;

const CLIENTS: usize = 10_000;

fn scoring(c: &mut Criterion) {
    let clients = sample_clients(CLIENTS);
    let today = bench_now().date_naive();
    let mut group = c.benchmark_group("scoring");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.bench_function("score_10k_clients", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for (profile, status) in &clients {
                if let Ok(score) = score_profile(black_box(profile), *status, today) {
                    total += u32::from(score.score);
                }
            }
            black_box(total)
        })
    });
    group.bench_function("walk_10k_clients", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for (profile, _) in &clients {
                for fix in black_box(profile).fixes() {
                    total += u64::from(fix.items_kept());
                }
            }
            black_box(total)
        })
    });
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
