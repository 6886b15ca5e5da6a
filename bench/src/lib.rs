//! Shared inputs for Engage's benchmarks, built the same way on every run (fixed seeds), so
//! the Rust benchmarks and the Python comparison measure the same data.

use chrono::{DateTime, Utc};
use domain::bgnbd::{self, BgNbdParams, CustomerSummary, simulate};
use domain::client::ClientStatus;
use domain::profile::Profile;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::io::Write;
use std::path::Path;

/// The moment sample clients are drawn for.
pub fn bench_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// `count` realistic clients (see `domain::sample`).
pub fn sample_clients(count: usize) -> Vec<(Profile, ClientStatus)> {
    let mut rng = SmallRng::seed_from_u64(2026);
    (0..count)
        .map(|_| {
            let sample = domain::sample::client(&mut rng, bench_now());
            (sample.profile, sample.status)
        })
        .collect()
}

/// The parameters the fit benchmark's customers are simulated with.
pub const FIT_PARAMS: BgNbdParams = BgNbdParams {
    r: 0.8,
    alpha: 30.0,
    a: 0.9,
    b: 3.5,
};

/// `count` simulated customers, first purchases spread evenly over a year and observed to
/// the end of the following one. With `daily`, purchase times are whole days, as in a
/// transaction log (customers then often share a summary); without, every time is exact.
pub fn simulated_customers(count: usize, daily: bool) -> Vec<CustomerSummary> {
    let mut rng = SmallRng::seed_from_u64(7);
    (0..count)
        .map(|i| {
            let age = 365.0 + (i % 365) as f64;
            let customer = simulate::customer(&FIT_PARAMS, age, &mut rng);
            if !daily {
                return customer.summary();
            }
            let days: Vec<i64> = std::iter::once(0)
                .chain(
                    customer
                        .repeat_purchase_days
                        .iter()
                        .map(|d| d.floor() as i64),
                )
                .collect();
            bgnbd::summarise(&days, age as i64).unwrap_or(customer.summary())
        })
        .collect()
}

/// Writes summaries as `frequency,recency,T` CSV, the columns `lifetimes` fits on.
pub fn write_summaries(path: &Path, customers: &[CustomerSummary]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "frequency,recency,T")?;
    for c in customers {
        writeln!(out, "{},{},{}", c.frequency, c.recency, c.age)?;
    }
    out.flush()
}
