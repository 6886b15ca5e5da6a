//! Fitted BG/NBD models: each fit is kept, the latest is the one in use.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store};
use domain::bgnbd::{BgNbdFit, BgNbdParams};
use ports::StoredFit;
use rusqlite::{Connection, OptionalExtension, params};

impl Store {
    pub async fn save_model_fit(&self, stored: StoredFit) -> Result<()> {
        self.write(move |tx| {
            let p = stored.fit.params;
            tx.execute(
                "INSERT INTO model_fits (fitted_at, source, observation_end, customers, r, alpha, a, b, log_likelihood, iterations)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    millis(stored.fitted_at),
                    stored.source,
                    stored.observation_end.to_string(),
                    stored.fit.customers as i64,
                    p.r,
                    p.alpha,
                    p.a,
                    p.b,
                    stored.fit.log_likelihood,
                    stored.fit.iterations,
                ],
            ).map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// The most recent fit, if the model has ever been fitted.
    pub async fn latest_model_fit(&self) -> Result<Option<StoredFit>> {
        self.read(latest_fit_on).await
    }
}

/// The most recent fit, on `conn`.
pub(crate) fn latest_fit_on(conn: &Connection) -> Result<Option<StoredFit>> {
    let row = conn
        .prepare_cached(
            "SELECT fitted_at, source, observation_end, customers, r, alpha, a, b, log_likelihood, iterations
             FROM model_fits ORDER BY id DESC LIMIT 1",
        ).map_err(db_error)?
        .query_row([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                BgNbdParams {
                    r: row.get(4)?,
                    alpha: row.get(5)?,
                    a: row.get(6)?,
                    b: row.get(7)?,
                },
                row.get::<_, f64>(8)?,
                row.get::<_, u32>(9)?,
            ))
        })
        .optional().map_err(db_error)?;
    row.map(
        |(fitted_at, source, end, customers, params, log_likelihood, iterations)| {
            Ok(StoredFit {
                fit: BgNbdFit {
                    params,
                    log_likelihood,
                    customers: customers as usize,
                    iterations,
                },
                source,
                observation_end: end
                    .parse()
                    .map_err(|_| crate::StoreError::Corrupt(format!("model date {end}")))?,
                fitted_at: instant(fitted_at)?,
            })
        },
    )
    .transpose()
}
