//! The email dashboard: every draft with its client, subject and review status.

use crate::live::use_ticker;
use crate::routes::format_instant;
use domain::views::EmailSummary;
use leptos::prelude::*;
use std::time::Duration;

#[server]
pub async fn list_emails() -> Result<Vec<EmailSummary>, ServerFnError> {
    use crate::service::{service, to_server_error};
    service()?.list_emails(100).await.map_err(to_server_error)
}

/// The email dashboard; refreshes itself as drafts arrive.
#[component]
pub fn EmailsPage() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(2));
    let emails = Resource::new(move || tick.get(), |_| list_emails());
    view! {
        <section class="panel">
            <h1>"Emails"</h1>
            <p class="hint">"Drafts wait here for their stylist's review. New drafts appear by themselves."</p>
            <Transition fallback=|| view! { <p>"Loading emails…"</p> }>
                {move || Suspend::new(async move {
                    match emails.await {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"No emails yet. Add a client and their welcome draft appears here."</p> }.into_any(),
                        Ok(rows) => view! { <EmailTable rows/> }.into_any(),
                        Err(_) => view! { <p class="error">"The emails could not be loaded. Please reload the page."</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn EmailTable(rows: Vec<EmailSummary>) -> impl IntoView {
    view! {
        <table class="emails">
            <thead>
                <tr><th>"Client"</th><th>"Stylist"</th><th>"Kind"</th><th>"Subject"</th><th>"Status"</th><th>"Writer"</th><th>"Drafted"</th></tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|email| {
                        view! {
                            <tr data-email-id=email.id.as_str().to_owned()>
                                <td>{email.client_name}</td>
                                <td>{email.stylist_name}</td>
                                <td>{email.kind.label()}</td>
                                <td class="subject">{email.subject}</td>
                                <td><span class=format!("status status-{}", email.status.as_str())>{email.status.as_str()}</span></td>
                                <td>{email.writer}</td>
                                <td>{format_instant(email.created_at)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
