//! The BG/NBD model of repeat buying (Fader, Hardie & Lee, 2005, "Counting your customers
//! the easy way"): the calibrated, statistical view beside the explainable score.
//!
//! While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
//! repeat purchase they drop out with probability p ~ Beta(a, b). From each customer's
//! summary — repeat purchases `x`, time of the last purchase `t_x` and age `T`, both measured
//! from the first purchase in days — [`fit`] finds r, α, a and b by maximum likelihood, and
//! [`BgNbdParams`] then gives each customer's probability of still being alive and their
//! expected purchases in the next N days.
//!
//! The log-likelihood is evaluated in log space throughout (log-gamma, log-sum-exp of the
//! two terms of equation 6), so large frequencies and long histories never overflow. The
//! optimiser is BFGS on the logarithms of the parameters with the analytic gradient.
//! Terms that depend only on `x` are computed once per distinct frequency, and customers
//! with identical summaries once with a weight, which is what makes a fit on 100,000
//! customers take milliseconds.

use crate::validation::FieldError;
use serde::{Deserialize, Serialize};

/// One customer's purchase summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerSummary {
    /// Repeat purchases: purchases after the first (`x`).
    pub frequency: u32,
    /// Days from the first to the last purchase (`t_x`); 0 without repeat purchases.
    pub recency: f64,
    /// Days from the first purchase to the end of observation (`T`).
    pub age: f64,
}

impl CustomerSummary {
    /// A summary that makes sense: finite, 0 ≤ recency ≤ age, recency 0 without repeats.
    pub fn new(frequency: u32, recency: f64, age: f64) -> Result<Self, FieldError> {
        if !(age.is_finite() && age >= 0.0) {
            return Err(FieldError::new(
                "age",
                "Age must be a number of days of at least 0.",
            ));
        }
        if !(recency.is_finite() && (0.0..=age).contains(&recency)) {
            return Err(FieldError::new(
                "recency",
                "Recency must lie between 0 and the age.",
            ));
        }
        if frequency == 0 && recency != 0.0 {
            return Err(FieldError::new(
                "recency",
                "Without repeat purchases recency is 0.",
            ));
        }
        Ok(Self {
            frequency,
            recency,
            age,
        })
    }
}

/// The four parameters of the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BgNbdParams {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale (in days) of the purchase-rate distribution.
    pub alpha: f64,
    /// First shape of the dropout distribution.
    pub a: f64,
    /// Second shape of the dropout distribution.
    pub b: f64,
}

/// The result of a maximum-likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BgNbdFit {
    pub params: BgNbdParams,
    /// The log-likelihood of the data at the fitted parameters (natural log, summed).
    pub log_likelihood: f64,
    pub customers: usize,
    pub iterations: u32,
}

/// Why a fit could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no customers to fit: at least {min} are needed")]
    TooFewCustomers { min: usize },
    #[error("no customer made a repeat purchase, so dropout cannot be estimated")]
    NoRepeatPurchases,
    #[error("the optimiser did not converge after {iterations} iterations")]
    NotConverged { iterations: u32 },
}

/// Customers needed for a fit to mean anything.
pub const MIN_CUSTOMERS: usize = 10;

impl BgNbdParams {
    /// The log-likelihood of one customer (equation 6 of the paper, in log space).
    pub fn log_likelihood_of(&self, customer: &CustomerSummary) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = f64::from(customer.frequency);
        let common =
            ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
                - ln_gamma(b)
                - ln_gamma(a + b + x);
        let survived = -(r + x) * (alpha + customer.age).ln();
        if customer.frequency == 0 {
            return common + survived;
        }
        let dropped = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + customer.recency).ln();
        common + log_sum_exp(survived, dropped)
    }

    /// The summed log-likelihood of many customers.
    pub fn log_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        customers.iter().map(|c| self.log_likelihood_of(c)).sum()
    }

    /// Probability that a customer with this history is still active (equation 13 of
    /// Fader, Hardie & Lee's note on P(alive)).
    pub fn probability_alive(&self, customer: &CustomerSummary) -> f64 {
        if customer.frequency == 0 {
            return 1.0;
        }
        let Self { r, alpha, a, b } = *self;
        let x = f64::from(customer.frequency);
        let log_ratio = (a / (b + x - 1.0)).ln()
            + (r + x) * ((alpha + customer.age) / (alpha + customer.recency)).ln();
        1.0 / (1.0 + log_ratio.exp())
    }

    /// Expected purchases in the next `days` days for a customer with this history
    /// (equation 10 of the paper).
    pub fn expected_purchases(&self, customer: &CustomerSummary, days: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = f64::from(customer.frequency);
        let t_big = customer.age;
        let z = days / (alpha + t_big + days);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let head = (a + b + x - 1.0) / (a - 1.0);
        let tail = 1.0 - ((alpha + t_big) / (alpha + t_big + days)).powf(r + x) * hyp;
        let numerator = head * tail;
        let denominator = if customer.frequency == 0 {
            1.0
        } else {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t_big) / (alpha + customer.recency)).powf(r + x)
        };
        numerator / denominator
    }
}

fn log_sum_exp(p: f64, q: f64) -> f64 {
    let (high, low) = if p > q { (p, q) } else { (q, p) };
    high + (low - high).exp().ln_1p()
}

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ψ(x), the derivative of ln Γ, for x > 0: recurrence up to 10, then the asymptotic series.
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0)))));
    result + x.ln() - 0.5 * inv - series
}

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its power series.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for j in 0..100_000 {
        let j = f64::from(j);
        term *= (a + j) * (b + j) / ((c + j) * (j + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

/// Customers with identical summaries, evaluated once each with a weight, grouped by
/// frequency so the terms in `x` alone are computed once per group. Ages and recencies are
/// stored as indexes into one table of distinct times, so ln(α + t) and 1/(α + t) are
/// computed once per distinct time rather than once per customer: a transaction log in
/// whole days has a few hundred distinct times however many customers it holds.
struct Prepared {
    groups: Vec<Group>,
    times: Vec<f64>,
    customers: usize,
}

struct Group {
    x: f64,
    weight: f64,
    members: Vec<Member>,
}

/// A distinct summary: how many customers share it, and its age and recency as indexes
/// into [`Prepared::times`].
struct Member {
    weight: f64,
    age: u32,
    recency: u32,
}

impl Prepared {
    fn new(customers: &[CustomerSummary]) -> Self {
        let mut times: Vec<f64> = customers.iter().flat_map(|c| [c.age, c.recency]).collect();
        times.sort_unstable_by(f64::total_cmp);
        times.dedup();
        let index = |t: f64| times.partition_point(|&v| v < t) as u32;
        let mut sorted: Vec<(u32, u32, u32)> = customers
            .iter()
            .map(|c| (c.frequency, index(c.age), index(c.recency)))
            .collect();
        sorted.sort_unstable();
        let mut groups: Vec<Group> = Vec::new();
        for (x, age, recency) in sorted {
            let x = f64::from(x);
            match groups.last_mut() {
                Some(group) if group.x == x => {
                    group.weight += 1.0;
                    match group.members.last_mut() {
                        Some(last) if last.age == age && last.recency == recency => {
                            last.weight += 1.0
                        }
                        _ => group.members.push(Member {
                            weight: 1.0,
                            age,
                            recency,
                        }),
                    }
                }
                _ => groups.push(Group {
                    x,
                    weight: 1.0,
                    members: vec![Member {
                        weight: 1.0,
                        age,
                        recency,
                    }],
                }),
            }
        }
        Self {
            groups,
            times,
            customers: customers.len(),
        }
    }

    /// The summed log-likelihood at `params` and its gradient with respect to
    /// (ln r, ln α, ln a, ln b).
    fn evaluate(&self, params: &BgNbdParams) -> (f64, [f64; 4]) {
        let BgNbdParams { r, alpha, a, b } = *params;
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let ln_time: Vec<f64> = self.times.iter().map(|t| (alpha + t).ln()).collect();
        let inv_time: Vec<f64> = self.times.iter().map(|t| 1.0 / (alpha + t)).collect();
        let mut total = 0.0;
        let (mut g_r, mut g_alpha, mut g_a, mut g_b) = (0.0, 0.0, 0.0, 0.0);
        for group in &self.groups {
            let x = group.x;
            let rx = r + x;
            let common = ln_gamma(rx) - lg_r + r * ln_alpha + lg_ab + ln_gamma(b + x)
                - lg_b
                - ln_gamma(a + b + x);
            total += group.weight * common;
            g_r += group.weight * (digamma(rx) - dg_r + ln_alpha);
            g_alpha += group.weight * r / alpha;
            let dg_abx = digamma(a + b + x);
            g_a += group.weight * (dg_ab - dg_abx);
            g_b += group.weight * (dg_ab + digamma(b + x) - dg_b - dg_abx);
            if x == 0.0 {
                for member in &group.members {
                    let age = member.age as usize;
                    total -= member.weight * r * ln_time[age];
                    g_r -= member.weight * ln_time[age];
                    g_alpha -= member.weight * r * inv_time[age];
                }
                continue;
            }
            let drop_const = ln_a - (b + x - 1.0).ln();
            let mut dropped_weight = 0.0;
            for member in &group.members {
                let (age, last) = (member.age as usize, member.recency as usize);
                let (ln_age, ln_last) = (ln_time[age], ln_time[last]);
                let survived = -rx * ln_age;
                let dropped = drop_const - rx * ln_last;
                // log-sum-exp of the two terms, and each term's share of the sum, from one exp.
                let (high, low) = if survived > dropped {
                    (survived, dropped)
                } else {
                    (dropped, survived)
                };
                let ratio = (low - high).exp();
                let low_share = ratio / (1.0 + ratio);
                let w_dropped = if dropped >= survived {
                    1.0 - low_share
                } else {
                    low_share
                };
                let w_survived = 1.0 - w_dropped;
                let weight = member.weight;
                total += weight * (high + ratio.ln_1p());
                g_r -= weight * (w_survived * ln_age + w_dropped * ln_last);
                g_alpha -= weight * rx * (w_survived * inv_time[age] + w_dropped * inv_time[last]);
                dropped_weight += weight * w_dropped;
            }
            g_a += dropped_weight / a;
            g_b -= dropped_weight / (b + x - 1.0);
        }
        (total, [g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    }
}

fn params_of(theta: &[f64; 4]) -> BgNbdParams {
    BgNbdParams {
        r: theta[0].exp(),
        alpha: theta[1].exp(),
        a: theta[2].exp(),
        b: theta[3].exp(),
    }
}

/// The largest change of any log-parameter in one iteration.
const MAX_LOG_STEP: f64 = 2.0;

/// Iterations allowed before a fit is declared not converged.
const MAX_ITERATIONS: u32 = 500;

/// Fits the model by maximum likelihood.
pub fn fit(customers: &[CustomerSummary]) -> Result<BgNbdFit, FitError> {
    if customers.len() < MIN_CUSTOMERS {
        return Err(FitError::TooFewCustomers { min: MIN_CUSTOMERS });
    }
    if customers.iter().all(|c| c.frequency == 0) {
        return Err(FitError::NoRepeatPurchases);
    }
    // Large data sets are first fitted on an evenly spread sample of about a tenth; the
    // full fit then starts from that optimum with its curvature (the objective is a mean,
    // so the curvature carries over), and needs only a few full passes.
    let mut start = ([0.0; 4], None);
    let mut iterations = 0;
    if customers.len() >= 2 * WARM_START_SAMPLE {
        let stride = customers.len() / WARM_START_SAMPLE;
        let sample: Vec<CustomerSummary> = customers.iter().step_by(stride).copied().collect();
        if sample.iter().any(|c| c.frequency > 0) {
            let prepared = Prepared::new(&sample);
            if let Ok((theta, used, h)) = bfgs(mean_objective(&prepared), start) {
                start = (theta, Some(h));
                iterations += used;
            }
        }
    }
    let prepared = Prepared::new(customers);
    let (theta, used, _) = bfgs(mean_objective(&prepared), start)?;
    let params = params_of(&theta);
    Ok(BgNbdFit {
        params,
        log_likelihood: prepared.evaluate(&params).0,
        customers: prepared.customers,
        iterations: iterations + used,
    })
}

/// Customers in the warm-start sample.
const WARM_START_SAMPLE: usize = 10_000;

/// The mean negative log-likelihood and its gradient: minimised, so tolerances do not
/// depend on the size of the data.
fn mean_objective(prepared: &Prepared) -> impl Fn(&[f64; 4]) -> (f64, [f64; 4]) + '_ {
    let n = prepared.customers as f64;
    move |theta| {
        let (ll, grad) = prepared.evaluate(&params_of(theta));
        let value = -ll / n;
        if value.is_finite() {
            (value, grad.map(|g| -g / n))
        } else {
            (f64::INFINITY, [0.0; 4])
        }
    }
}

type Matrix = [[f64; 4]; 4];

fn dot(p: &[f64; 4], q: &[f64; 4]) -> f64 {
    p.iter().zip(q).map(|(a, b)| a * b).sum()
}

/// BFGS with a backtracking line search (Armijo), stopping when the gradient vanishes.
/// Starts from `start`: a point and, if known, an inverse-Hessian estimate there. Returns
/// the optimum, the iterations used and the final inverse-Hessian estimate.
fn bfgs(
    objective: impl Fn(&[f64; 4]) -> (f64, [f64; 4]),
    start: ([f64; 4], Option<Matrix>),
) -> Result<([f64; 4], u32, Matrix), FitError> {
    const GRADIENT_TOLERANCE: f64 = 1e-9;
    let identity = |scale: f64| {
        let mut h = [[0.0; 4]; 4];
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = scale;
        }
        h
    };
    let warm = start.1.is_some();
    let mut h = start.1.unwrap_or(identity(1.0));
    let mut theta = start.0;
    let (mut value, mut grad) = objective(&theta);
    if !value.is_finite() {
        return Err(FitError::NotConverged { iterations: 0 });
    }
    for iteration in 1..=MAX_ITERATIONS {
        if grad.iter().all(|g| g.abs() < GRADIENT_TOLERANCE) {
            return Ok((theta, iteration - 1, h));
        }
        let mut direction = [0.0; 4];
        for i in 0..4 {
            direction[i] = -dot(&h[i], &grad);
        }
        let mut slope = dot(&direction, &grad);
        if slope >= 0.0 {
            // Not a descent direction: fall back to steepest descent.
            h = identity(1.0);
            direction = grad.map(|g| -g);
            slope = dot(&direction, &grad);
        }
        // Never move a parameter by more than a factor of e^MAX_LOG_STEP at once: far from
        // the optimum the quasi-Newton step can be wild, and the likelihood is flat in
        // directions (a and b growing together) where an unbounded step never comes back.
        let longest = direction.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        let mut step = if longest > MAX_LOG_STEP {
            MAX_LOG_STEP / longest
        } else {
            1.0
        };
        let (next, next_value, next_grad) = loop {
            let candidate: [f64; 4] = std::array::from_fn(|i| theta[i] + step * direction[i]);
            let (v, g) = objective(&candidate);
            if v.is_finite() && v <= value + 1e-4 * step * slope {
                break (candidate, v, g);
            }
            step *= 0.5;
            if step < 1e-20 {
                // No progress possible along this direction: at the optimum to machine precision.
                return if grad.iter().all(|g| g.abs() < 1e-6) {
                    Ok((theta, iteration, h))
                } else {
                    Err(FitError::NotConverged {
                        iterations: iteration,
                    })
                };
            }
        };
        let s: [f64; 4] = std::array::from_fn(|i| next[i] - theta[i]);
        let y: [f64; 4] = std::array::from_fn(|i| next_grad[i] - grad[i]);
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if iteration == 1 && !warm {
                // Scale the first inverse-Hessian guess to the curvature just seen.
                h = identity(sy / dot(&y, &y));
            }
            let rho = 1.0 / sy;
            let hy: [f64; 4] = std::array::from_fn(|i| dot(&h[i], &y));
            let yhy = dot(&y, &hy);
            for i in 0..4 {
                for j in 0..4 {
                    h[i][j] +=
                        rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
                }
            }
        }
        let improvement = value - next_value;
        theta = next;
        value = next_value;
        grad = next_grad;
        if improvement.abs() < 1e-15 * value.abs().max(1.0) && grad.iter().all(|g| g.abs() < 1e-6) {
            return Ok((theta, iteration, h));
        }
    }
    Err(FitError::NotConverged {
        iterations: MAX_ITERATIONS,
    })
}

/// Builds customer summaries from dated purchases, the way the model sees them: purchases on
/// the same day count once, the first purchase starts the clock, and purchases after
/// `observation_end` are ignored (customers who first bought after it are left out).
/// `days` holds, per customer, the purchase dates as day numbers in any order.
pub fn summarise(days: &[i64], observation_end: i64) -> Option<CustomerSummary> {
    let mut seen: Vec<i64> = days
        .iter()
        .copied()
        .filter(|&d| d <= observation_end)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let (&first, &last) = (seen.first()?, seen.last()?);
    Some(CustomerSummary {
        frequency: (seen.len() - 1) as u32,
        recency: (last - first) as f64,
        age: (observation_end - first) as f64,
    })
}

/// Simulation of the BG/NBD process, for tests, benchmarks and demo data.
pub mod simulate {
    use super::{BgNbdParams, CustomerSummary};
    use rand::Rng;
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    /// One simulated customer: the days (from their first purchase, which is day 0) on
    /// which they bought again, within an observation window of `age` days.
    pub struct SimulatedCustomer {
        pub repeat_purchase_days: Vec<f64>,
        pub age: f64,
    }

    impl SimulatedCustomer {
        pub fn summary(&self) -> CustomerSummary {
            CustomerSummary {
                frequency: self.repeat_purchase_days.len() as u32,
                recency: self.repeat_purchase_days.last().copied().unwrap_or(0.0),
                age: self.age,
            }
        }
    }

    /// Draws a customer observed for `age` days after their first purchase: a purchase rate
    /// λ ~ Gamma(r, 1/α), a dropout probability p ~ Beta(a, b), then purchases as a Poisson
    /// process, with a p chance of leaving after each one.
    pub fn customer(params: &BgNbdParams, age: f64, rng: &mut impl Rng) -> SimulatedCustomer {
        // The parameters come from a fit or a test, so they are positive; guard anyway.
        let rate = Gamma::new(params.r, 1.0 / params.alpha)
            .map(|g| g.sample(rng))
            .unwrap_or(0.0);
        let dropout = Beta::new(params.a, params.b)
            .map(|d| d.sample(rng))
            .unwrap_or(1.0);
        let mut days = Vec::new();
        let Ok(gap) = Exp::new(rate) else {
            return SimulatedCustomer {
                repeat_purchase_days: days,
                age,
            };
        };
        let mut t = 0.0;
        loop {
            t += gap.sample(rng);
            if t > age {
                break;
            }
            days.push(t);
            if rng.random::<f64>() < dropout {
                break;
            }
        }
        SimulatedCustomer {
            repeat_purchase_days: days,
            age,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const TRUE: BgNbdParams = BgNbdParams {
        r: 0.8,
        alpha: 30.0,
        a: 0.9,
        b: 3.5,
    };

    fn simulated(count: usize, seed: u64) -> Vec<CustomerSummary> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..count)
            .map(|i| {
                // Customers acquired evenly over a year before the end of observation.
                let age = 365.0 + (i % 365) as f64;
                simulate::customer(&TRUE, age, &mut rng).summary()
            })
            .collect()
    }

    #[test]
    fn digamma_and_log_gamma_match_known_values() {
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-13);
        assert!((digamma(0.5) + euler + 2.0 * std::f64::consts::LN_2).abs() < 1e-13);
        assert!((digamma(10.0) - 2.251_752_589_066_721).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
    }

    #[test]
    fn log_likelihood_matches_a_hand_computed_value() {
        // Evaluated independently from equation 6 in its direct (not log) form with
        // Python's math.gamma for params r=0.5, alpha=2, a=0.7, b=1.5:
        //   x=0, T=5:           L = B(.7,1.5)/B(.7,1.5) * Γ(.5)·2^.5 / (Γ(.5)·7^.5) = (2/7)^0.5
        //   x=2, t_x=3, T=5:    L = B(.7,3.5)/B(.7,1.5)·Γ(2.5)·2^.5/(Γ(.5)·7^2.5)
        //                         + B(1.7,2.5)/B(.7,1.5)·Γ(2.5)·2^.5/(Γ(.5)·5^2.5)
        //   x=1, t_x=1, T=4:    likewise; the sum of the logs is -8.1374039427.
        let params = BgNbdParams {
            r: 0.5,
            alpha: 2.0,
            a: 0.7,
            b: 1.5,
        };
        let data = [
            CustomerSummary::new(0, 0.0, 5.0).unwrap(),
            CustomerSummary::new(2, 3.0, 5.0).unwrap(),
            CustomerSummary::new(1, 1.0, 4.0).unwrap(),
        ];
        let direct = |c: &CustomerSummary| {
            let beta = |p: f64, q: f64| (ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q)).exp();
            let gamma = |z: f64| ln_gamma(z).exp();
            let (r, al, a, b) = (params.r, params.alpha, params.a, params.b);
            let x = f64::from(c.frequency);
            let base = gamma(r + x) * al.powf(r) / gamma(r);
            let mut l = beta(a, b + x) / beta(a, b) * base / (al + c.age).powf(r + x);
            if c.frequency > 0 {
                l += beta(a + 1.0, b + x - 1.0) / beta(a, b) * base / (al + c.recency).powf(r + x);
            }
            l.ln()
        };
        assert!((params.log_likelihood_of(&data[0]) - (2.0f64 / 7.0).sqrt().ln()).abs() < 1e-12);
        for customer in &data {
            assert!((params.log_likelihood_of(customer) - direct(customer)).abs() < 1e-12);
        }
        assert!((params.log_likelihood(&data) - -8.137_403_942_7).abs() < 1e-9);
        // The grouped evaluation used by the fit agrees with the direct sum.
        let (grouped, _) = Prepared::new(&data).evaluate(&params);
        assert!((grouped - params.log_likelihood(&data)).abs() < 1e-12);
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let data = simulated(500, 3);
        let prepared = Prepared::new(&data);
        let theta = [0.1f64, 3.0, -0.2, 1.1];
        let (_, grad) = prepared.evaluate(&params_of(&theta));
        for i in 0..4 {
            let h = 1e-6;
            let mut up = theta;
            up[i] += h;
            let mut down = theta;
            down[i] -= h;
            let numeric = (prepared.evaluate(&params_of(&up)).0
                - prepared.evaluate(&params_of(&down)).0)
                / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-4 * numeric.abs().max(1.0),
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn fitting_20000_simulated_customers_recovers_the_parameters() {
        // Tolerance: each parameter within 15% of the value used to simulate. With 20,000
        // customers the sampling error of each estimate is a few percent (see bench/REPORT.md).
        let data = simulated(20_000, 42);
        let fitted = fit(&data).unwrap();
        let p = fitted.params;
        for (name, got, want) in [
            ("r", p.r, TRUE.r),
            ("alpha", p.alpha, TRUE.alpha),
            ("a", p.a, TRUE.a),
            ("b", p.b, TRUE.b),
        ] {
            assert!(
                (got - want).abs() / want < 0.15,
                "{name}: fitted {got}, simulated with {want}"
            );
        }
        // The fit is a maximum: the true parameters are no more likely than the fitted ones.
        assert!(fitted.log_likelihood >= TRUE.log_likelihood(&data) - 1e-6);
        assert!(
            (fitted.log_likelihood - p.log_likelihood(&data)).abs()
                < 1e-6 * fitted.log_likelihood.abs()
        );
        assert_eq!(fitted.customers, 20_000);
    }

    #[test]
    fn p_alive_and_expected_purchases_behave() {
        let recent = CustomerSummary::new(5, 360.0, 365.0).unwrap();
        let lapsed = CustomerSummary::new(5, 60.0, 365.0).unwrap();
        let one_timer = CustomerSummary::new(0, 0.0, 365.0).unwrap();
        assert!(TRUE.probability_alive(&recent) > 0.85);
        assert!(TRUE.probability_alive(&lapsed) < 0.2);
        assert_eq!(TRUE.probability_alive(&one_timer), 1.0);
        let e_recent = TRUE.expected_purchases(&recent, 90.0);
        let e_lapsed = TRUE.expected_purchases(&lapsed, 90.0);
        assert!(
            e_recent > e_lapsed && e_lapsed > 0.0,
            "{e_recent} {e_lapsed}"
        );
        assert!(TRUE.expected_purchases(&recent, 180.0) > e_recent);
        assert_eq!(TRUE.expected_purchases(&recent, 0.0), 0.0);
    }

    #[test]
    fn expected_purchases_match_simulation() {
        // Customers with the same history, simulated forward: the average number of
        // purchases in the next 90 days matches the closed form.
        let params = BgNbdParams {
            r: 2.0,
            alpha: 40.0,
            a: 2.0,
            b: 6.0,
        };
        let fresh = CustomerSummary::new(0, 0.0, 0.0).unwrap();
        let mut rng = SmallRng::seed_from_u64(9);
        let runs = 40_000;
        let total: usize = (0..runs)
            .map(|_| {
                simulate::customer(&params, 90.0, &mut rng)
                    .repeat_purchase_days
                    .len()
            })
            .sum();
        let simulated_mean = total as f64 / f64::from(runs);
        let predicted = params.expected_purchases(&fresh, 90.0);
        assert!(
            (simulated_mean - predicted).abs() < 0.03 * predicted,
            "{simulated_mean} vs {predicted}"
        );
    }

    #[test]
    fn summaries_collapse_same_day_purchases_and_respect_the_end_date() {
        let s = summarise(&[10, 3, 10, 25, 40], 30).unwrap();
        assert_eq!(
            s,
            CustomerSummary {
                frequency: 2,
                recency: 22.0,
                age: 27.0
            }
        );
        assert_eq!(summarise(&[31, 35], 30), None);
        assert!(CustomerSummary::new(0, 2.0, 5.0).is_err());
        assert!(CustomerSummary::new(1, 6.0, 5.0).is_err());
    }

    #[test]
    fn fitting_needs_customers_and_repeat_purchases() {
        assert_eq!(
            fit(&[]),
            Err(FitError::TooFewCustomers { min: MIN_CUSTOMERS })
        );
        let one_timers = vec![CustomerSummary::new(0, 0.0, 30.0).unwrap(); 50];
        assert_eq!(fit(&one_timers), Err(FitError::NoRepeatPurchases));
    }
}
