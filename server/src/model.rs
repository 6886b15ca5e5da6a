//! `engage model`: fit the BG/NBD model on the client base or on a transactions file, and
//! simulate transaction logs to try it on.

use crate::config::{FitArgs, SimulateArgs};
use anyhow::Context;
use chrono::{Days, NaiveDate};
use domain::bgnbd::{self, BgNbdFit, BgNbdParams, CustomerSummary};
use domain::profile::Money;
use ports::StoredFit;
use processors::Clock;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

/// One row of a transactions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub client_id: String,
    pub date: NaiveDate,
    pub amount: Money,
}

/// Why a transactions file was refused. Nothing is fitted from a file with any bad row.
#[derive(Debug, thiserror::Error)]
pub enum TransactionFileError {
    #[error("cannot read the transactions file: {0}")]
    Read(String),
    #[error("the header must name the columns client_id,date,amount (found: {found})")]
    Header { found: String },
    #[error("{} malformed row(s):\n{}", .0.len(), render_rows(.0))]
    Rows(Vec<RowError>),
    #[error("the file holds no transactions")]
    Empty,
}

/// A bad row: its line number in the file, the column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: &'static str,
    pub message: String,
}

/// Rows listed in an error message; the rest are counted.
const ROWS_SHOWN: usize = 20;

fn render_rows(rows: &[RowError]) -> String {
    let mut lines: Vec<String> = rows
        .iter()
        .take(ROWS_SHOWN)
        .map(|r| format!("  line {}: {}: {}", r.line, r.field, r.message))
        .collect();
    if rows.len() > ROWS_SHOWN {
        lines.push(format!("  … and {} more", rows.len() - ROWS_SHOWN));
    }
    lines.join("\n")
}

/// Reads `client_id,date,amount` rows (header required, columns in any order, ISO dates).
pub fn read_transactions(input: impl Read) -> Result<Vec<Transaction>, TransactionFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| TransactionFileError::Read(e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_col), Some(date_col), Some(amount_col)) =
        (column("client_id"), column("date"), column("amount"))
    else {
        return Err(TransactionFileError::Header {
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    };
    let mut transactions = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    field: "row",
                    message: error.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut bad = |field: &'static str, message: String| {
            errors.push(RowError {
                line,
                field,
                message,
            })
        };
        if record.len() != headers.len() {
            bad(
                "row",
                format!("expected {} columns, found {}", headers.len(), record.len()),
            );
            continue;
        }
        let client_id = &record[id_col];
        if client_id.is_empty() {
            bad("client_id", "is empty".into());
        }
        let raw_date = &record[date_col];
        // An ISO date, or an ISO date-time of which the date counts.
        let date = NaiveDate::parse_from_str(raw_date.get(..10).unwrap_or(raw_date), "%Y-%m-%d")
            .ok()
            .filter(|_| raw_date.len() == 10 || raw_date.as_bytes().get(10) == Some(&b'T'));
        if date.is_none() {
            bad(
                "date",
                format!("\"{raw_date}\" is not an ISO date (YYYY-MM-DD)"),
            );
        }
        let amount = Money::parse("amount", &record[amount_col]);
        if let Err(error) = &amount {
            bad("amount", error.message.clone());
        }
        if let (false, Some(date), Ok(amount)) = (client_id.is_empty(), date, amount) {
            transactions.push(Transaction {
                client_id: client_id.to_owned(),
                date,
                amount,
            });
        }
    }
    if !errors.is_empty() {
        return Err(TransactionFileError::Rows(errors));
    }
    if transactions.is_empty() {
        return Err(TransactionFileError::Empty);
    }
    Ok(transactions)
}

/// Per-customer summaries as of `calibration_end` (default: the last date in the file).
pub fn summaries(
    transactions: &[Transaction],
    calibration_end: Option<NaiveDate>,
) -> (Vec<CustomerSummary>, NaiveDate) {
    let end = calibration_end
        .or_else(|| transactions.iter().map(|t| t.date).max())
        .unwrap_or(NaiveDate::MIN);
    let mut by_client: HashMap<&str, Vec<i64>> = HashMap::new();
    for t in transactions {
        by_client
            .entry(t.client_id.as_str())
            .or_default()
            .push((t.date - end).num_days());
    }
    let mut summaries: Vec<CustomerSummary> = by_client
        .values()
        .filter_map(|days| bgnbd::summarise(days, 0))
        .collect();
    // A stable order, so the same file always gives the same fit.
    summaries.sort_by(|p, q| {
        (p.frequency, p.recency, p.age)
            .partial_cmp(&(q.frequency, q.recency, q.age))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    (summaries, end)
}

/// What `engage model fit` prints.
#[derive(Debug, Serialize)]
pub struct FitReport {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub log_likelihood: f64,
    pub customers: usize,
    pub iterations: u32,
    pub observation_end: NaiveDate,
    pub source: String,
}

impl FitReport {
    fn new(fit: &BgNbdFit, observation_end: NaiveDate, source: String) -> Self {
        let BgNbdParams { r, alpha, a, b } = fit.params;
        Self {
            r,
            alpha,
            a,
            b,
            log_likelihood: fit.log_likelihood,
            customers: fit.customers,
            iterations: fit.iterations,
            observation_end,
            source,
        }
    }

    fn render(&self) -> String {
        format!(
            "BG/NBD fit on {} customers ({}), observed to {}\n  r     = {:.6}\n  alpha = {:.6} days\n  a     = {:.6}\n  b     = {:.6}\n  log-likelihood = {:.4} ({} iterations)\n",
            self.customers,
            self.source,
            self.observation_end,
            self.r,
            self.alpha,
            self.a,
            self.b,
            self.log_likelihood,
            self.iterations
        )
    }
}

/// `engage model fit --transactions FILE`: fits on a transaction log and prints the result.
/// Needs no database.
pub fn fit_transactions(args: &FitArgs, path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let transactions = read_transactions(std::io::BufReader::new(file))
        .with_context(|| format!("in {}", path.display()))?;
    let (summaries, end) = summaries(&transactions, args.calibration_end);
    let fit = fit_logged(&summaries, end)?;
    print_report(
        &FitReport::new(&fit, end, path.display().to_string()),
        args.json,
        out,
    )
}

/// `engage model fit`: fits on the client base, stores the fit as the model in use, and
/// prints it.
pub async fn fit_clients(
    store: &dyn ports::Model,
    clock: &dyn Clock,
    args: &FitArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let end = args
        .calibration_end
        .unwrap_or_else(|| clock.now().date_naive());
    let summaries = store.customer_summaries(end).await?;
    let fit = fit_logged(&summaries, end)?;
    let source = "clients".to_owned();
    store
        .save_model_fit(StoredFit {
            fit,
            source: source.clone(),
            observation_end: end,
            fitted_at: clock.now(),
        })
        .await?;
    tracing::info!("stored as the model in use");
    print_report(&FitReport::new(&fit, end, source), args.json, out)
}

fn fit_logged(summaries: &[CustomerSummary], end: NaiveDate) -> anyhow::Result<BgNbdFit> {
    tracing::info!(customers = summaries.len(), %end, "fitting BG/NBD");
    let started = std::time::Instant::now();
    let fit = bgnbd::fit(summaries).context("the model could not be fitted")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        iterations = fit.iterations,
        "fitted"
    );
    Ok(fit)
}

fn print_report(report: &FitReport, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.render())?;
    }
    Ok(())
}

/// `engage model simulate`: a transactions log drawn from the BG/NBD process, with customers
/// whose first purchase falls evenly between `start` and `end`.
pub fn simulate(args: &SimulateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    anyhow::ensure!(args.end > args.start, "--end must be after --start");
    let params = BgNbdParams {
        r: args.r,
        alpha: args.alpha,
        a: args.a,
        b: args.b,
    };
    for (name, value) in [
        ("r", args.r),
        ("alpha", args.alpha),
        ("a", args.a),
        ("b", args.b),
    ] {
        anyhow::ensure!(value.is_finite() && value > 0.0, "--{name} must be above 0");
    }
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let span = (args.end - args.start).num_days() as u64;
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "client_id,date,amount")?;
    for index in 0..args.customers {
        let first = args.start + Days::new(u64::from(index) % span.max(1));
        let age = (args.end - first).num_days() as f64;
        let customer = bgnbd::simulate::customer(&params, age, &mut rng);
        let amount = |i: usize| 20 + (index as usize * 7 + i * 13) % 180;
        writeln!(out, "c{index:07},{first},{}.00", amount(0))?;
        for (i, day) in customer.repeat_purchase_days.iter().enumerate() {
            let on = first + Days::new(*day as u64);
            writeln!(out, "c{index:07},{on},{}.00", amount(i + 1))?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_file_is_read_in_any_column_order() {
        let file = "date,client_id,amount\n2025-01-02,c1,10.50\n2025-02-02T10:00:00Z,c1,20\n2025-01-05,c2,$5\n";
        let rows = read_transactions(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].date.to_string(), "2025-02-02");
        assert_eq!(rows[0].amount, Money::from_cents(1050));
        let (summaries, end) = summaries(&rows, None);
        assert_eq!(end.to_string(), "2025-02-02");
        assert!(summaries.contains(&CustomerSummary {
            frequency: 1,
            recency: 31.0,
            age: 31.0
        }));
        assert!(summaries.contains(&CustomerSummary {
            frequency: 0,
            recency: 0.0,
            age: 28.0
        }));
    }

    #[test]
    fn malformed_rows_are_reported_by_line_number() {
        let file = "client_id,date,amount\nc1,2025-01-02,10\nc2,02/01/2025,10\n,2025-01-03,abc\nc3,2025-01-04\nc4,2025-01-05,5\n";
        let Err(TransactionFileError::Rows(rows)) = read_transactions(file.as_bytes()) else {
            panic!("expected row errors")
        };
        let found: Vec<(u64, &str)> = rows.iter().map(|r| (r.line, r.field)).collect();
        assert_eq!(
            found,
            [(3, "date"), (4, "client_id"), (4, "amount"), (5, "row")]
        );
        let message = TransactionFileError::Rows(rows).to_string();
        assert!(message.contains("line 3: date"), "{message}");
    }

    #[test]
    fn a_file_without_the_columns_is_refused() {
        let error = read_transactions("id,when,value\n1,2025-01-01,3\n".as_bytes()).unwrap_err();
        assert!(error.to_string().contains("client_id,date,amount"));
        assert!(matches!(
            read_transactions("client_id,date,amount\n".as_bytes()),
            Err(TransactionFileError::Empty)
        ));
    }

    #[test]
    fn calibration_end_ignores_later_transactions() {
        let file = "client_id,date,amount\nc1,2025-01-01,1\nc1,2025-03-01,1\nc2,2025-04-01,1\n";
        let rows = read_transactions(file.as_bytes()).unwrap();
        let (summaries, _) = summaries(&rows, NaiveDate::from_ymd_opt(2025, 2, 1));
        assert_eq!(
            summaries,
            [CustomerSummary {
                frequency: 0,
                recency: 0.0,
                age: 31.0
            }]
        );
    }
}
