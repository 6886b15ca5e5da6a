//! The manager's dashboard: charts of the book of business, of how the AI drafts fare with
//! the stylists, and of the pipeline's health. Every chart is SVG rendered on the server,
//! with a title, hover details (`<title>` on each mark) and its numbers in a table. The
//! page follows new scores and drafts as they are written.

use crate::error::AppError;
use crate::routes::LoadError;
use domain::Band;
use domain::dashboard::Dashboard;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

#[server]
pub async fn load_dashboard(from: String, to: String) -> Result<Dashboard, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service.dashboard(&user, from, to).await?)
}

/// `/dashboard`.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let range = Memo::new(move |_| {
        let q = query.read();
        (
            q.get("from").unwrap_or_default(),
            q.get("to").unwrap_or_default(),
        )
    });
    let dashboard = Resource::new(move || range.get(), |(from, to)| load_dashboard(from, to));
    view! {
        // Every figure follows the pipeline and reviewers while the page is open (crate::live).
        <div id="dashboard-live" data-live="">
        <Transition fallback=|| view! { <section class="panel"><p>"Loading the dashboard…"</p></section> }>
            {move || Suspend::new(async move {
                match dashboard.await {
                    Ok(dashboard) => view! { <Figures dashboard/> }.into_any(),
                    Err(AppError::Invalid(errors)) => view! {
                        <section class="panel">
                            <h1>"Dashboard"</h1>
                            <RangeForm from=String::new() to=String::new()/>
                            <p class="error" role="alert">{errors.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")}</p>
                        </section>
                    }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Transition>
        </div>
    }
}

#[component]
fn RangeForm(from: String, to: String) -> impl IntoView {
    view! {
        <Form method="GET" action="" attr:class="filters" attr:aria-label="Date range">
            <div class="field">
                <label for="range-from">"From"</label>
                <input id="range-from" name="from" type="date" value=from/>
            </div>
            <div class="field">
                <label for="range-to">"To"</label>
                <input id="range-to" name="to" type="date" value=to/>
            </div>
            <button type="submit">"Show"</button>
        </Form>
    }
}

fn band_color(band: Band) -> &'static str {
    match band {
        Band::Thriving => "fill-thriving",
        Band::Steady => "fill-steady",
        Band::Cooling => "fill-cooling",
        Band::AtRisk => "fill-at-risk",
    }
}

/// Bands from the top of a stack to the bottom.
const STACK: [Band; 4] = [Band::Thriving, Band::Steady, Band::Cooling, Band::AtRisk];

/// One series of the funnel chart: its name, colour, and the day's value.
type Series = (
    &'static str,
    &'static str,
    fn(&domain::dashboard::EmailDay) -> u64,
);

fn short_day(day: chrono::NaiveDate) -> String {
    day.format("%b %-d").to_string()
}

fn minutes(m: Option<f64>) -> String {
    match m {
        None => "—".to_owned(),
        Some(m) if m < 1.0 => "under 1 min".to_owned(),
        Some(m) if m < 90.0 => format!("{m:.0} min"),
        Some(m) if m < 48.0 * 60.0 => format!("{:.1} h", m / 60.0),
        Some(m) => format!("{:.1} days", m / 1440.0),
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or("—".to_owned(), |x| format!("{:.0}%", x * 100.0))
}

/// A chart: a figure with a caption, the SVG, and its numbers as a table.
#[component]
fn Chart(
    id: &'static str,
    title: &'static str,
    svg: AnyView,
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
) -> impl IntoView {
    let title_id = format!("{id}-title");
    view! {
        <figure class="chart dashboard-chart" id=id>
            <figcaption id=title_id.clone()>{title}</figcaption>
            <div class="chart-area" role="img" aria-labelledby=title_id>{svg}</div>
            <details>
                <summary>"The numbers"</summary>
                <table>
                    <thead><tr>{head.into_iter().map(|h| view! { <th scope="col">{h}</th> }).collect_view()}</tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| view! {
                            <tr>{row.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        </figure>
    }
}

/// Vertical bars, one per label, each with a hover title.
fn bars(values: &[(String, f64, &'static str)], unit: &str) -> AnyView {
    let (width, height) = (600.0, 180.0);
    let max = values.iter().map(|v| v.1).fold(0.0_f64, f64::max).max(1e-9);
    let slot = width / values.len().max(1) as f64;
    let shown = values.len() <= 12;
    view! {
        <svg viewBox=format!("0 0 {width} {}", height + 20.0) preserveAspectRatio="none">
            {values.iter().enumerate().map(|(i, (label, value, color))| {
                let h = value / max * height;
                let x = i as f64 * slot + slot * 0.15;
                view! {
                    <g>
                        <rect x=format!("{x:.1}") y=format!("{:.1}", height - h) width=format!("{:.1}", slot * 0.7) height=format!("{h:.1}") class=*color>
                            <title>{format!("{label}: {value:.2}{unit}").replace(".00", "")}</title>
                        </rect>
                        {shown.then(|| view! {
                            <text x=format!("{:.1}", x + slot * 0.35) y=format!("{}", height + 15.0) text-anchor="middle" class="axis">{label.clone()}</text>
                        })}
                    </g>
                }
            }).collect_view()}
        </svg>
    }
    .into_any()
}

#[component]
fn Figures(dashboard: Dashboard) -> impl IntoView {
    let range = dashboard.range;
    let health = dashboard.health.clone();
    // Score distribution by band.
    let distribution = {
        let values: Vec<(String, f64, &'static str)> = STACK
            .iter()
            .rev()
            .map(|b| {
                (
                    b.label().to_owned(),
                    dashboard.bands.get(*b) as f64,
                    band_color(*b),
                )
            })
            .collect();
        let rows = values
            .iter()
            .map(|(l, v, _)| vec![l.clone(), format!("{v}")])
            .collect();
        (bars(&values, " clients"), rows)
    };
    // Band mix over time: stacked areas, one polygon per band.
    let mix = {
        let (width, height) = (600.0_f64, 180.0_f64);
        let days = &dashboard.band_days;
        let n = days.len().max(2) as f64 - 1.0;
        let total_max = days.iter().map(|d| d.mix.total()).max().unwrap_or(0).max(1) as f64;
        let x = |i: usize| i as f64 / n * width;
        let mut layers = Vec::new();
        let mut below = vec![0.0_f64; days.len()];
        for band in STACK.iter().rev() {
            let above: Vec<f64> = days
                .iter()
                .zip(&below)
                .map(|(d, b)| b + d.mix.get(*band) as f64)
                .collect();
            let top: Vec<String> = above
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), height - v / total_max * height))
                .collect();
            let bottom: Vec<String> = below
                .iter()
                .enumerate()
                .rev()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), height - v / total_max * height))
                .collect();
            let last = days.last().map_or(0, |d| d.mix.get(*band));
            layers.push(view! {
                <polygon points=format!("{} {}", top.join(" "), bottom.join(" ")) class=format!("{} layer", band_color(*band))>
                    <title>{format!("{}: {last} clients on the last day", band.label())}</title>
                </polygon>
            });
            below = above;
        }
        let svg = view! {
            <svg viewBox=format!("0 0 {width} {height}") preserveAspectRatio="none">{layers}</svg>
        }
        .into_any();
        let rows = days
            .iter()
            .map(|d| {
                let mut row = vec![d.day.to_string()];
                row.extend(STACK.iter().map(|b| d.mix.get(*b).to_string()));
                row
            })
            .collect();
        (svg, rows)
    };
    // At-risk clients per stylist.
    let at_risk = {
        let values: Vec<(String, f64, &'static str)> = dashboard
            .stylists
            .iter()
            .map(|s| (s.stylist_name.clone(), s.at_risk as f64, "fill-at-risk"))
            .collect();
        let rows = dashboard
            .stylists
            .iter()
            .map(|s| vec![s.stylist_name.clone(), s.at_risk.to_string()])
            .collect();
        (bars(&values, " at risk"), rows)
    };
    // Email funnel per day: drafted, approved, sent, rejected side by side.
    let funnel = {
        let (width, height) = (600.0_f64, 180.0_f64);
        let days = &dashboard.email_days;
        let max = days
            .iter()
            .map(|d| d.drafted.max(d.approved).max(d.sent).max(d.rejected))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let slot = width / days.len().max(1) as f64;
        let series: [Series; 4] = [
            ("drafted", "fill-brand", |d| d.drafted),
            ("approved", "fill-steady", |d| d.approved),
            ("sent", "fill-thriving", |d| d.sent),
            ("rejected", "fill-at-risk", |d| d.rejected),
        ];
        let marks = days.iter().enumerate().flat_map(|(i, d)| {
            series.iter().enumerate().map(move |(j, (name, color, value))| {
                let v = value(d) as f64;
                let h = v / max * height;
                let w = slot / 5.0;
                view! {
                    <rect x=format!("{:.2}", i as f64 * slot + w * (j as f64 + 0.5)) y=format!("{:.1}", height - h) width=format!("{w:.2}") height=format!("{h:.1}") class=*color>
                        <title>{format!("{}: {} {name}", short_day(d.day), v)}</title>
                    </rect>
                }
            })
        }).collect_view();
        let svg = view! { <svg viewBox=format!("0 0 {width} {height}") preserveAspectRatio="none">{marks}</svg> }.into_any();
        let rows = days
            .iter()
            .map(|d| {
                vec![
                    d.day.to_string(),
                    d.drafted.to_string(),
                    d.approved.to_string(),
                    d.sent.to_string(),
                    d.rejected.to_string(),
                    d.failed.to_string(),
                ]
            })
            .collect();
        (svg, rows)
    };
    // Draft quality per day: the share of reviewed drafts approved, and how much the
    // stylists edited what they approved.
    let quality = {
        let values: Vec<(String, f64, &'static str)> = dashboard
            .email_days
            .iter()
            .map(|d| {
                (
                    short_day(d.day),
                    d.approval_rate().unwrap_or(0.0) * 100.0,
                    "fill-thriving",
                )
            })
            .collect();
        let rows = dashboard
            .email_days
            .iter()
            .map(|d| {
                vec![
                    d.day.to_string(),
                    d.approved.to_string(),
                    d.rejected.to_string(),
                    percent(d.approval_rate()),
                    d.edited.to_string(),
                    percent(d.mean_edit),
                ]
            })
            .collect();
        (bars(&values, "% approved"), rows)
    };
    // Median minutes from draft to review, per day.
    let review_time = {
        let values: Vec<(String, f64, &'static str)> = dashboard
            .email_days
            .iter()
            .map(|d| {
                (
                    short_day(d.day),
                    d.median_review_minutes.unwrap_or(0.0),
                    "fill-steady",
                )
            })
            .collect();
        let rows = dashboard
            .email_days
            .iter()
            .map(|d| vec![d.day.to_string(), minutes(d.median_review_minutes)])
            .collect();
        (bars(&values, " min"), rows)
    };
    // LLM cost per day.
    let cost = {
        let values: Vec<(String, f64, &'static str)> = dashboard
            .email_days
            .iter()
            .map(|d| (short_day(d.day), d.cost_usd, "fill-brand"))
            .collect();
        let rows = dashboard
            .email_days
            .iter()
            .map(|d| vec![d.day.to_string(), format!("${:.4}", d.cost_usd)])
            .collect();
        (bars(&values, " USD"), rows)
    };
    let drafts_by_writer: Vec<String> = dashboard
        .writers
        .iter()
        .map(|w| format!("{}: {}", w.writer, w.drafted))
        .collect();
    let charts: Vec<AnyView> = vec![
        view! { <Chart id="chart-bands" title="Clients by band, now" svg=distribution.0 head=vec!["Band", "Clients"] rows=distribution.1/> }.into_any(),
        view! { <Chart id="chart-mix" title="Band mix per day" svg=mix.0 head=vec!["Day", "Thriving", "Steady", "Cooling", "At risk"] rows=mix.1/> }.into_any(),
        view! { <Chart id="chart-at-risk" title="At-risk clients per stylist" svg=at_risk.0 head=vec!["Stylist", "At risk"] rows=at_risk.1/> }.into_any(),
        view! { <Chart id="chart-funnel" title="Emails per day: drafted, approved, sent, rejected" svg=funnel.0 head=vec!["Day", "Drafted", "Approved", "Sent", "Rejected", "Failed"] rows=funnel.1/> }.into_any(),
        view! { <Chart id="chart-quality" title="AI draft quality per day: share approved, and edits" svg=quality.0 head=vec!["Day", "Approved", "Rejected", "Approval rate", "Edited", "Mean edit"] rows=quality.1/> }.into_any(),
        view! { <Chart id="chart-review-time" title="Median time from draft to review, per day" svg=review_time.0 head=vec!["Day", "Median"] rows=review_time.1/> }.into_any(),
        view! { <Chart id="chart-cost" title="LLM cost per day" svg=cost.0 head=vec!["Day", "Cost"] rows=cost.1/> }.into_any(),
    ];
    let overview = view! {
        <section class="panel">
            <div class="list-header">
                <h1>"Dashboard"</h1>
                <span class="hint">{format!("{} to {}", range.from, range.to)}</span>
            </div>
            <RangeForm from=range.from.to_string() to=range.to.to_string()/>
            <div class="chart-grid">{charts}</div>
        </section>
    }
    .into_any();
    let stylists = view! {
        <section class="panel" aria-labelledby="stylists-heading">
            <h2 id="stylists-heading">"Stylists"</h2>
            <table class="stylists" tabindex="0">
                <thead><tr><th scope="col">"Stylist"</th><th scope="col">"Clients"</th><th scope="col">"At risk"</th><th scope="col">"Waiting for review"</th><th scope="col">"Median review time"</th><th scope="col">"Emails sent"</th></tr></thead>
                <tbody>
                    {dashboard.stylists.into_iter().map(|s| view! {
                        <tr data-stylist=s.stylist_id.clone()>
                            <td>{s.stylist_name}</td><td>{s.clients}</td><td>{s.at_risk}</td><td>{s.pending_reviews}</td>
                            <td>{minutes(s.median_review_minutes)}</td><td>{s.sent}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any();
    let writers = view! {
        <section class="panel" aria-labelledby="writers-heading">
            <h2 id="writers-heading">"Draft quality by writer"</h2>
            <table class="writers" tabindex="0">
                <thead><tr><th scope="col">"Writer"</th><th scope="col">"Drafted"</th><th scope="col">"Approved"</th><th scope="col">"Rejected"</th><th scope="col">"Approval rate"</th><th scope="col">"Edited"</th><th scope="col">"Mean edit"</th></tr></thead>
                <tbody>
                    {dashboard.writers.iter().map(|w| view! {
                        <tr data-writer=w.writer.clone()>
                            <td>{w.writer.clone()}</td><td>{w.drafted}</td><td>{w.approved}</td><td>{w.rejected}</td>
                            <td>{percent(w.approval_rate)}</td><td>{w.edited}</td><td>{percent(w.mean_edit)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any();
    let health = view! {
        <section class="panel health" aria-labelledby="health-heading">
            <h2 id="health-heading">"Pipeline health"</h2>
            <dl class="figures">
                <div><dt>"Queue depth"</dt><dd id="health-depth">{health.queue_depth}</dd></div>
                <div><dt>"In flight"</dt><dd>{health.in_flight}</dd></div>
                <div><dt>"Oldest message"</dt><dd>{health.oldest_message_age_secs.map_or("—".to_owned(), |s| format!("{s} s"))}</dd></div>
                <div><dt>"Feed lag"</dt><dd>{health.feed_lag}</dd></div>
                <div><dt>"Dead letters"</dt><dd id="health-dlq"><a href="/dlq">{health.dead_letters}</a></dd></div>
                <div><dt>"LLM breaker"</dt><dd>{health.llm_breaker}</dd></div>
                <div><dt>"Drafts by writer"</dt><dd id="health-writers">{if drafts_by_writer.is_empty() { "—".to_owned() } else { drafts_by_writer.join(", ") }}</dd></div>
            </dl>
        </section>
    }
    .into_any();
    let outcomes = view! { <Outcomes outcomes=dashboard.outcomes/> }.into_any();
    view! { {overview} {outcomes} {stylists} {writers} {health} }
}

/// A rate with its interval: "30% (22–40%, 30 of 100)".
fn rate(rate: &domain::outcomes::Rate) -> String {
    match (rate.rate, rate.low, rate.high) {
        (Some(r), Some(low), Some(high)) => format!(
            "{:.0}% ({:.0}–{:.0}%, {} of {})",
            r * 100.0,
            low * 100.0,
            high * 100.0,
            rate.successes,
            rate.trials
        ),
        _ => "no clients yet".to_owned(),
    }
}

/// A lift with its interval, in percentage points: "+20 pts (+9 to +31)".
fn lift(lift: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (lift, low, high) {
        (Some(d), Some(low), Some(high)) => format!(
            "{:+.0} pts ({:+.0} to {:+.0})",
            d * 100.0,
            low * 100.0,
            high * 100.0
        ),
        _ => "needs emailed and held-out clients".to_owned(),
    }
}

/// Purchases against what the model expected: "12 (model: 9.4)".
fn against_model(actual: i64, with_expectation: i64, expected: Option<f64>) -> String {
    match expected {
        Some(expected) => {
            format!("{actual} ({with_expectation} where the model expected {expected:.1})")
        }
        None => format!("{actual} (no model fitted)"),
    }
}

/// "Is it working?": per email kind, how often emailed clients bought within the window
/// against clients held out, per writer, with intervals.
#[component]
fn Outcomes(outcomes: domain::outcomes::Outcomes) -> impl IntoView {
    let window = outcomes.window_days;
    view! {
        <section class="panel" id="outcomes" aria-labelledby="outcomes-heading">
            <h2 id="outcomes-heading">"Is it working?"</h2>
            <p class="hint">{format!(
                "Clients who bought in the {window} days after the decision to email them (from the next day on), against clients held out at random (no email). 95% intervals; a lift whose interval stays above 0 is unlikely to be chance."
            )}</p>
            {if outcomes.kinds.is_empty() {
                view! { <p class="empty">"No emails decided yet."</p> }.into_any()
            } else {
                view! {
                    <table class="outcomes" tabindex="0">
                        <thead><tr>
                            <th scope="col">"Email"</th><th scope="col">"Writer"</th>
                            <th scope="col">"Bought within the window"</th><th scope="col">"Lift against held out"</th>
                            <th scope="col">"Purchases"</th>
                        </tr></thead>
                        <tbody>
                            {outcomes.kinds.into_iter().map(|kind| {
                                let label = kind.kind.label();
                                let writers = kind.writers.into_iter().map(|w| view! {
                                    <tr class="writer" data-kind=kind.kind.as_str() data-writer=w.writer.clone()>
                                        <td>{label}</td>
                                        <td>{format!("{} ({})", w.writer, w.prompt_version)}</td>
                                        <td>{rate(&w.conversion)}</td>
                                        <td>{lift(w.lift, w.lift_low, w.lift_high)}</td>
                                        <td>{against_model(w.purchases, w.purchases_with_expectation, w.expected_purchases)}</td>
                                    </tr>
                                }).collect_view();
                                view! {
                                    <tr class="emailed" data-kind=kind.kind.as_str()>
                                        <th scope="row">{label}</th>
                                        <td>"All writers"</td>
                                        <td class="emailed-rate">{rate(&kind.emailed)}</td>
                                        <td class="lift">{lift(kind.lift, kind.lift_low, kind.lift_high)}</td>
                                        <td></td>
                                    </tr>
                                    {writers}
                                    <tr class="held-out" data-kind=kind.kind.as_str()>
                                        <td>{label}</td>
                                        <td>"Held out (no email)"</td>
                                        <td class="held-out-rate">{rate(&kind.held_out)}</td>
                                        <td>"—"</td>
                                        <td>{against_model(kind.held_out_purchases, kind.held_out_purchases_with_expectation, kind.held_out_expected_purchases)}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
