//! BG/NBD fit time on 100,000 simulated customers.
//!
//! `daily_100k` is the realistic case (purchase days from a transaction log; customers often
//! share a summary), `exact_100k` the worst case (every summary distinct). The daily data
//! and the fitted parameters are written under the target directory for
//! `bench/lifetimes_compare.py`, which fits the same data with Python's `lifetimes` and
//! reports the speed ratio. Run both with `bench/model-bench.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use domain::bgnbd::fit;
use engage_bench::{simulated_customers, write_summaries};
use std::hint::black_box;
use std::path::PathBuf;

const CUSTOMERS: usize = 100_000;

fn fitting(c: &mut Criterion) {
    let daily = simulated_customers(CUSTOMERS, true);
    let exact = simulated_customers(CUSTOMERS, false);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bgnbd");
    let fitted = fit(&daily).expect("the simulated data fits");
    std::fs::create_dir_all(&out)
        .and_then(|_| write_summaries(&out.join("daily_100k.csv"), &daily))
        .and_then(|_| {
            let json = serde_json::json!({
                "r": fitted.params.r, "alpha": fitted.params.alpha,
                "a": fitted.params.a, "b": fitted.params.b,
                "log_likelihood": fitted.log_likelihood, "iterations": fitted.iterations,
                "customers": fitted.customers,
            });
            std::fs::write(out.join("daily_100k_rust.json"), json.to_string())
        })
        .expect("bench data is written");
    eprintln!("bench data in {}", out.display());

    let mut group = c.benchmark_group("bgnbd_fit");
    group.sample_size(20);
    group.bench_function("daily_100k", |b| b.iter(|| fit(black_box(&daily))));
    group.bench_function("exact_100k", |b| b.iter(|| fit(black_box(&exact))));
    group.finish();
}

criterion_group!(benches, fitting);
criterion_main!(benches);
