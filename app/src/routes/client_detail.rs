//! A client's page: the score with its band and the factors that explain it, the model's
//! outlook, the score history, forms to record what happened (a Fix, a Freestyle purchase,
//! feedback), the audit trail and the client's emails. New scores appear by themselves.

use crate::error::AppError;
use crate::form::{FormAction, PostForm};
use crate::routes::{
    BandBadge, FormStatus, LoadError, action_error, field_error, format_instant, invalid,
    refresh_on_success,
};
use domain::views::{ClientDetail, ScorePoint};
#[cfg(feature = "ssr")]
use domain::{
    Activity, ClientId, FieldError, ValidationErrors,
    profile::{FeedbackInput, FixInput, PurchaseInput},
};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[server]
pub async fn load_client(id: String) -> Result<ClientDetail, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service.client_detail(&user, ClientId::new(id)).await?)
}

/// A whole number typed into a form field.
#[cfg(feature = "ssr")]
fn whole_number(field: &str, raw: &str) -> Result<i64, FieldError> {
    raw.trim()
        .parse()
        .map_err(|_| FieldError::new(field, "Enter a whole number."))
}

#[cfg(feature = "ssr")]
async fn record(id: String, activity: Activity) -> Result<u64, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let client = service
        .record_activity(&user, ClientId::new(id), activity, None)
        .await?;
    Ok(client.version)
}

/// Records a delivered Fix; returns the client's new version.
#[server]
pub async fn record_fix(
    id: String,
    delivered_on: String,
    items_sent: String,
    items_kept: String,
    order_value: String,
) -> Result<u64, AppError> {
    let mut errors = ValidationErrors::default();
    let sent = errors.collect(whole_number("items_sent", &items_sent));
    let kept = errors.collect(whole_number("items_kept", &items_kept));
    let (Some(items_sent), Some(items_kept)) = (sent, kept) else {
        return Err(AppError::Invalid(errors));
    };
    let fix = FixInput {
        delivered_on,
        items_sent,
        items_kept,
        order_value,
    };
    record(id, Activity::Fix(fix)).await
}

/// Records a Freestyle purchase; returns the client's new version.
#[server]
pub async fn record_purchase(
    id: String,
    purchased_on: String,
    amount: String,
) -> Result<u64, AppError> {
    record(
        id,
        Activity::Purchase(PurchaseInput {
            purchased_on,
            amount,
        }),
    )
    .await
}

/// Records feedback; returns the client's new version.
#[server]
pub async fn record_feedback(
    id: String,
    given_on: String,
    rating: String,
    #[server(default)] note: String,
) -> Result<u64, AppError> {
    let rating = whole_number("rating", &rating)
        .map_err(|e| AppError::Invalid(ValidationErrors(vec![e])))?;
    let note = Some(note).filter(|n| !n.trim().is_empty());
    record(
        id,
        Activity::Feedback(FeedbackInput {
            given_on,
            rating,
            note,
        }),
    )
    .await
}

/// `/clients/:id`.
#[component]
pub fn ClientDetailPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let detail = Resource::new(move || id.get(), load_client);
    let notice = move || {
        let q = query.read();
        if q.get("added").is_some() {
            Some("Client added. Their first score arrives in a moment.")
        } else if q.get("saved").is_some() {
            Some("Saved.")
        } else {
            None
        }
    };
    view! {
        {move || notice().map(|text| view! { <p class="form-status notice" role="status">{text}</p> })}
        // The score, its history and the timeline follow the pipeline (crate::live).
        <div id="client-live" data-live="">
        <Transition fallback=|| view! { <section class="panel"><p>"Loading client…"</p></section> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(detail) => view! { <Overview detail/> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Transition>
        </div>
        <RecordForms id=id.get_untracked()/>
        <div id="history-live" data-live="">
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                detail.await.ok().map(|detail| view! { <History detail/> })
            })}
        </Transition>
        </div>
    }
}

#[component]
fn Overview(detail: ClientDetail) -> impl IntoView {
    let client = &detail.client;
    let consent = if client.profile.consent().allows_email() {
        "Agreed to receive emails"
    } else {
        match client.profile.consent() {
            domain::EmailConsent::Unsubscribed { .. } => "Unsubscribed from emails",
            _ => "Has not agreed to emails",
        }
    };
    let styles: Vec<&str> = client
        .profile
        .style()
        .styles
        .iter()
        .map(|s| s.as_str())
        .collect();
    let stored = detail.history.last().copied();
    view! {
        <section class="panel client-overview">
            <div class="list-header">
                <h1 id="client-name">{client.name.as_str().to_owned()}</h1>
                <a class="button secondary" href=format!("/clients/{}/edit", client.id)>"Edit"</a>
            </div>
            <p class="meta">
                {client.email.as_str().to_owned()}" · "{detail.stylist_name.clone()}" · "
                {crate::routes::clients::status_label(client.status)}" · "{consent}
                {(!styles.is_empty()).then(|| format!(" · Likes {}", styles.join(", ")))}
            </p>
            <div class="score-row">
                <div class="score-now" id="current-score" data-score=stored.map(|s| s.score.to_string())>
                    <span class="label">"Score"</span>
                    <BandBadge score=stored.map(|s| s.score) band=stored.map(|s| s.band)/>
                </div>
                {detail.outlook.map(|o| view! {
                    <div class="outlook">
                        <span class="label">"Still active (model)"</span>
                        <strong>{format!("{:.0}%", o.p_alive * 100.0)}</strong>
                        <span class="label">"Expected orders, next 90 days"</span>
                        <strong>{format!("{:.1}", o.expected_purchases_90_days)}</strong>
                    </div>
                })}
            </div>
            {detail.score.map(|score| view! {
                <h2>"Why this score"</h2>
                <p class="hint">{format!("As of now: {} ({}). Each line adds or takes points.", score.score, score.band.label())}</p>
                <ul class="factors">
                    {score.factors.into_iter().map(|f| {
                        let class = if f.points > 0 { "up" } else if f.points < 0 { "down" } else { "even" };
                        view! { <li class=class>{f.explanation}</li> }
                    }).collect_view()}
                </ul>
            })}
            <ScoreChart points=detail.history.clone()/>
        </section>
    }
}

/// The score over time as an SVG line over the bands, with the numbers in a table.
#[component]
fn ScoreChart(points: Vec<ScorePoint>) -> impl IntoView {
    if points.len() < 2 {
        return view! { <p class="hint">"The score history chart appears after the second score."</p> }.into_any();
    }
    let (width, height) = (600.0_f64, 160.0_f64);
    let first = points[0].at.timestamp_millis() as f64;
    let last = points[points.len() - 1].at.timestamp_millis() as f64;
    let span = (last - first).max(1.0);
    let x =
        |at: chrono::DateTime<chrono::Utc>| (at.timestamp_millis() as f64 - first) / span * width;
    let y = |score: u8| height - f64::from(score) / 100.0 * height;
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.at), y(p.score)))
        .collect();
    let bands = domain::Band::ALL.map(|band| {
        let (low, high) = band.score_range();
        let top = y(high.min(100));
        let bottom = y(low);
        view! { <rect class=format!("zone zone-{}", band.as_str()) x="0" y=format!("{top:.1}") width=width.to_string() height=format!("{:.1}", bottom - top)/> }
    });
    view! {
        <figure class="chart">
            <figcaption id="score-chart-title">"Score history"</figcaption>
            <svg viewBox=format!("0 0 {width} {height}") role="img" aria-labelledby="score-chart-title" preserveAspectRatio="none">
                <title>"Score history"</title>
                {bands.into_iter().collect_view()}
                <polyline class="score-line" points=line.join(" ") fill="none"/>
            </svg>
            <details>
                <summary>"Scores as a table"</summary>
                <table>
                    <thead><tr><th scope="col">"When"</th><th scope="col">"Score"</th><th scope="col">"Band"</th></tr></thead>
                    <tbody>
                        {points.iter().rev().map(|p| view! {
                            <tr><td>{format_instant(p.at)}</td><td>{p.score}</td><td>{p.band.label()}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        </figure>
    }
    .into_any()
}

/// The three activity forms: an island, so each answers in place (and keeps what was typed
/// when a value is refused); without JavaScript they post and come back to the page.
#[island]
fn RecordForms(id: String) -> impl IntoView {
    let id = StoredValue::new(id);
    view! {
        <section class="panel" aria-labelledby="record-heading">
            <h2 id="record-heading">"Record what happened"</h2>
            <div class="record-forms">
                <FixForm id=id.get_value()/>
                <PurchaseForm id=id.get_value()/>
                <FeedbackForm id=id.get_value()/>
            </div>
        </section>
    }
}

/// "Recorded" or the reason nothing was, under an activity form; a recorded activity
/// refreshes the page's live parts at once.
fn outcome_message(action: FormAction<u64>) -> Signal<Option<String>> {
    refresh_on_success(action);
    let value = action.value();
    Signal::derive(move || match value.get() {
        Some(Ok(_)) => Some("Recorded. The score updates in a moment.".to_owned()),
        Some(Err(error)) => Some(error.to_string()),
        None => None,
    })
}

#[component]
fn FixForm(id: String) -> impl IntoView {
    let action = FormAction::new::<RecordFix>();
    let error = action_error(action);
    view! {
        <PostForm action attr:class="activity-form" attr:id="fix-form" attr:novalidate=true>
            <h3>"A Fix was delivered"</h3>
            <input type="hidden" name="id" value=id/>
            <div class="field">
                <label for="fix-date">"Delivered on (empty: today)"</label>
                <input id="fix-date" name="delivered_on" type="date" aria-invalid=invalid(error, "delivered_on")/>
                {field_error(error, "delivered_on", "Delivered on")}
            </div>
            <div class="field small">
                <label for="fix-sent">"Items sent"</label>
                <input id="fix-sent" name="items_sent" type="number" min="1" max="10" value="5" aria-invalid=invalid(error, "items_sent")/>
                {field_error(error, "items_sent", "Items sent")}
            </div>
            <div class="field small">
                <label for="fix-kept">"Items kept"</label>
                <input id="fix-kept" name="items_kept" type="number" min="0" max="10" value="2" aria-invalid=invalid(error, "items_kept")/>
                {field_error(error, "items_kept", "Items kept")}
            </div>
            <div class="field small">
                <label for="fix-value">"Order value ($)"</label>
                <input id="fix-value" name="order_value" type="text" inputmode="decimal" value="" placeholder="129.50" aria-invalid=invalid(error, "order_value")/>
                {field_error(error, "order_value", "Order value")}
            </div>
            <button type="submit" disabled=move || action.pending().get()>"Record Fix"</button>
            <FormStatus message=outcome_message(action)/>
        </PostForm>
    }
}

#[component]
fn PurchaseForm(id: String) -> impl IntoView {
    let action = FormAction::new::<RecordPurchase>();
    let error = action_error(action);
    view! {
        <PostForm action attr:class="activity-form" attr:id="purchase-form" attr:novalidate=true>
            <h3>"A Freestyle purchase"</h3>
            <input type="hidden" name="id" value=id/>
            <div class="field">
                <label for="purchase-date">"Bought on (empty: today)"</label>
                <input id="purchase-date" name="purchased_on" type="date" aria-invalid=invalid(error, "purchased_on")/>
                {field_error(error, "purchased_on", "Bought on")}
            </div>
            <div class="field small">
                <label for="purchase-amount">"Amount ($)"</label>
                <input id="purchase-amount" name="amount" type="text" inputmode="decimal" placeholder="59.00" aria-invalid=invalid(error, "amount")/>
                {field_error(error, "amount", "Amount")}
            </div>
            <button type="submit" disabled=move || action.pending().get()>"Record purchase"</button>
            <FormStatus message=outcome_message(action)/>
        </PostForm>
    }
}

#[component]
fn FeedbackForm(id: String) -> impl IntoView {
    let action = FormAction::new::<RecordFeedback>();
    let error = action_error(action);
    view! {
        <PostForm action attr:class="activity-form" attr:id="feedback-form" attr:novalidate=true>
            <h3>"Feedback"</h3>
            <input type="hidden" name="id" value=id/>
            <div class="field">
                <label for="feedback-date">"Given on (empty: today)"</label>
                <input id="feedback-date" name="given_on" type="date" aria-invalid=invalid(error, "given_on")/>
                {field_error(error, "given_on", "Given on")}
            </div>
            <div class="field small">
                <label for="feedback-rating">"Rating (1–5)"</label>
                <input id="feedback-rating" name="rating" type="number" min="1" max="5" value="4" aria-invalid=invalid(error, "rating")/>
                {field_error(error, "rating", "Rating")}
            </div>
            <div class="field">
                <label for="feedback-note">"Note"</label>
                <textarea id="feedback-note" name="note" rows="2" maxlength="1000"></textarea>
                {field_error(error, "note", "Note")}
            </div>
            <button type="submit" disabled=move || action.pending().get()>"Record feedback"</button>
            <FormStatus message=outcome_message(action)/>
        </PostForm>
    }
}

/// The client's emails and the audit trail.
#[component]
fn History(detail: ClientDetail) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="emails-heading">
            <h2 id="emails-heading">"Emails"</h2>
            {if detail.emails.is_empty() {
                view! { <p class="empty">"No emails yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="email-list">
                        {detail.emails.into_iter().map(|e| view! {
                            <li>
                                <a href=format!("/emails/{}", e.id)>{e.subject}</a>
                                " · "{e.kind.label()}" · "
                                <span class=format!("status status-{}", e.status.as_str())>{e.status.as_str()}</span>
                                " · "{format_instant(e.created_at)}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">"Timeline"</h2>
            <ol class="timeline">
                {detail.timeline.into_iter().map(|entry| view! {
                    <li class=format!("entry entry-{}", entry.kind)>
                        <time>{format_instant(entry.at)}</time>
                        <span>{entry.text}</span>
                        {entry.actor.map(|a| view! { <span class="actor">" — "{a}</span> })}
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}
