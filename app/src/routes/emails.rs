//! The review queue: drafts waiting for their stylist (all drafts for managers), with bulk
//! approval, and the other emails by status. New drafts appear by themselves.

use crate::error::AppError;
use crate::routes::{FormStatus, LoadError, format_instant};
use domain::EmailStatus;
use domain::views::ApproveReport;
use domain::views::EmailSummary;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[server]
pub async fn list_emails(status: String) -> Result<Vec<EmailSummary>, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let status = match status.as_str() {
        "" => Some(EmailStatus::Drafted),
        "all" => None,
        raw => Some(EmailStatus::parse(raw).ok_or_else(|| {
            AppError::Invalid(domain::ValidationErrors::single(
                "status",
                "Status must be drafted, approved, sent, rejected, failed, withdrawn or all.",
            ))
        })?),
    };
    Ok(service.list_emails(&user, status, 200).await?)
}

/// Approves the chosen drafts and queues them for sending.
#[server]
pub async fn approve_emails(
    #[server(default)] ids: Vec<String>,
    #[server(default)] send_at: String,
    #[server(default)] status: String,
) -> Result<ApproveReport, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let ids = ids.into_iter().map(domain::EmailId::new).collect();
    let report = service.approve_emails(&user, ids, &send_at).await?;
    // The form is a plain post: back to the queue, which says what was approved.
    // Back to the tab the approval was made on.
    let tab = TABS
        .iter()
        .find(|(value, _)| *value == status && !value.is_empty());
    let mut outcome: Vec<(&str, String)> = tab
        .map(|(value, _)| ("status", (*value).to_owned()))
        .into_iter()
        .collect();
    outcome.extend([
        ("approved", report.queued.to_string()),
        ("scheduled", report.scheduled.to_string()),
    ]);
    if let Some(at) = report.first_send_at {
        outcome.push(("first", at.to_rfc3339()));
    }
    crate::routes::redirect_with("/emails", &outcome);
    Ok(report)
}

/// What the last bulk approval did, from the address it came back to.
fn approved_from_query(query: &leptos_router::params::ParamsMap) -> Option<ApproveReport> {
    let count = |key: &str| query.get(key).and_then(|v| v.parse().ok());
    Some(ApproveReport {
        queued: count("approved")?,
        scheduled: count("scheduled").unwrap_or(0),
        first_send_at: query
            .get("first")
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .map(|at| at.with_timezone(&chrono::Utc)),
    })
}

pub(crate) fn approve_message(report: &ApproveReport) -> String {
    match (report.queued, report.first_send_at) {
        (1, Some(at)) => format!(
            "Approved: it goes out at {} (the client's time to read it, outside the quiet hours).",
            format_instant(at)
        ),
        (1, None) => "Approved: it is on its way to the client.".to_owned(),
        (n, Some(at)) if report.scheduled == n => format!(
            "Approved {n} emails: each goes out at its client's usual hour, the first at {}.",
            format_instant(at)
        ),
        (n, Some(at)) => format!(
            "Approved {n} emails: {} go out later, the first at {}; the rest are on their way.",
            report.scheduled,
            format_instant(at)
        ),
        (n, None) => format!("Approved {n} emails: they are on their way."),
    }
}

/// The choice of when approved emails go out, for the approve forms.
#[component]
pub(crate) fn SendAtChoice(id: &'static str) -> impl IntoView {
    view! {
        <label for=id>"Send"</label>
        <select id=id name="send_at">
            <option value="now" selected=true>"now"</option>
            <option value="usual_hour">"at the client's usual hour"</option>
        </select>
    }
}

const TABS: [(&str, &str); 7] = [
    ("", "To review"),
    ("approved", "Approved"),
    ("sent", "Sent"),
    ("rejected", "Rejected"),
    ("failed", "Failed"),
    ("withdrawn", "Withdrawn"),
    ("all", "All"),
];

/// `/emails`.
#[component]
pub fn EmailsPage() -> impl IntoView {
    let query = use_query_map();
    let status = Memo::new(move |_| query.read().get("status").unwrap_or_default());
    let emails = Resource::new(move || status.get(), list_emails);
    let approve = ServerAction::<ApproveEmails>::new();
    let message = Signal::derive(move || match approve.value().get() {
        Some(Err(error)) => Some(error.to_string()),
        _ => approved_from_query(&query.read()).map(|report| approve_message(&report)),
    });
    view! {
        <section class="panel">
            <h1>"Emails"</h1>
            <p class="hint">"Drafts wait here for review: read, edit, approve or reject each one. New drafts appear by themselves."</p>
            <nav class="tabs" aria-label="Email status">
                {TABS.into_iter().map(|(value, label)| {
                    let href = if value.is_empty() { "/emails".to_owned() } else { format!("/emails?status={value}") };
                    let current = move || (status.get() == value).then_some("page");
                    view! { <a href=href aria-current=current>{label}</a> }
                }).collect_view()}
            </nav>
            <FormStatus message/>
            // New drafts and sends come in while the queue is open (crate::live).
            <div id="emails-live" data-live="">
            <Transition fallback=|| view! { <p>"Loading emails…"</p> }>
                {move || Suspend::new(async move {
                    match emails.await {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"Nothing here."</p> }.into_any(),
                        Ok(rows) => view! { <EmailTable rows approve tab=status.get_untracked()/> }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
            </div>
        </section>
    }
}

#[component]
fn EmailTable(
    rows: Vec<EmailSummary>,
    approve: ServerAction<ApproveEmails>,
    tab: String,
) -> impl IntoView {
    let drafts = rows.iter().any(|e| e.status == EmailStatus::Drafted);
    view! {
        <ActionForm action=approve attr:class="bulk">
            <input type="hidden" name="status" value=tab/>
            <table class="emails" tabindex="0">
                <thead>
                    <tr>
                        <th scope="col"><span class="visually-hidden">"Select"</span></th>
                        <th scope="col">"Client"</th><th scope="col">"Stylist"</th><th scope="col">"Kind"</th>
                        <th scope="col">"Subject"</th><th scope="col">"Status"</th><th scope="col">"Writer"</th><th scope="col">"Drafted"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().enumerate().map(|(i, email)| {
                        let id = email.id.as_str().to_owned();
                        let select = (email.status == EmailStatus::Drafted).then(|| {
                            let label = format!("Select the email to {}", email.client_name);
                            view! { <input type="checkbox" name=format!("ids[{i}]") value=id.clone() aria-label=label/> }
                        });
                        view! {
                            <tr data-email-id=id.clone()>
                                <td>{select}</td>
                                <td><a href=format!("/clients/{}", email.client_id)>{email.client_name}</a></td>
                                <td>{email.stylist_name}</td>
                                <td>{email.kind.label()}</td>
                                <td class="subject"><a href=format!("/emails/{id}")>{email.subject}</a></td>
                                <td><span class=format!("status status-{}", email.status.as_str())>{email.status.as_str()}</span></td>
                                <td>{email.writer}</td>
                                <td>{format_instant(email.created_at)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {drafts.then(|| view! {
                <div class="review-actions">
                    <SendAtChoice id="bulk-send-at"/>
                    <button type="submit" disabled=move || approve.pending().get()>"Approve and send selected"</button>
                </div>
            })}
        </ActionForm>
    }
}
