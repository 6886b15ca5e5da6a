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

/// Asks the pipeline for a new draft of an email awaiting review. `Err` carries a message
/// for the stylist when the email can no longer be redrafted.
#[server]
pub async fn regenerate_email(email_id: String) -> Result<Result<(), String>, ServerFnError> {
    use crate::service::{ServiceError, service, to_server_error};
    match service()?
        .regenerate_email(domain::EmailId::new(email_id))
        .await
    {
        Ok(()) => Ok(Ok(())),
        Err(ServiceError::Invalid(errors)) => Ok(Err(errors
            .message_for("email_id")
            .unwrap_or("This email cannot be redrafted.")
            .to_owned())),
        Err(error) => Err(to_server_error(error)),
    }
}

/// The email dashboard; refreshes itself as drafts arrive.
#[component]
pub fn EmailsPage() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(2));
    let redraft = ServerAction::<RegenerateEmail>::new();
    let emails = Resource::new(
        move || (tick.get(), redraft.version().get()),
        |_| list_emails(),
    );
    view! {
        <section class="panel">
            <h1>"Emails"</h1>
            <p class="hint">"Drafts wait here for their stylist's review. New drafts appear by themselves."</p>
            <p class="form-status" role="status">
                {move || match redraft.value().get() {
                    Some(Ok(Ok(()))) => "A new draft is on its way; it replaces the old one in a moment.".to_owned(),
                    Some(Ok(Err(message))) => message,
                    Some(Err(_)) => "The draft could not be redrafted just now; please try again.".to_owned(),
                    None => String::new(),
                }}
            </p>
            <Transition fallback=|| view! { <p>"Loading emails…"</p> }>
                {move || Suspend::new(async move {
                    match emails.await {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"No emails yet. Add a client and their welcome draft appears here."</p> }.into_any(),
                        Ok(rows) => view! { <EmailTable rows redraft/> }.into_any(),
                        Err(_) => view! { <p class="error">"The emails could not be loaded. Please reload the page."</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Every email, newest first; drafts awaiting review can be redrafted.
#[component]
fn EmailTable(rows: Vec<EmailSummary>, redraft: ServerAction<RegenerateEmail>) -> impl IntoView {
    view! {
        <table class="emails">
            <thead>
                <tr><th>"Client"</th><th>"Stylist"</th><th>"Kind"</th><th>"Subject"</th><th>"Status"</th><th>"Writer"</th><th>"Drafted"</th><th></th></tr>
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
                                <td>
                                    {(email.status == domain::EmailStatus::Drafted).then(|| {
                                        let id = email.id.as_str().to_owned();
                                        view! {
                                            <ActionForm action=redraft attr:class="redraft">
                                                <input type="hidden" name="email_id" value=id/>
                                                <button type="submit" class="secondary" disabled=move || redraft.pending().get()>"Redraft"</button>
                                            </ActionForm>
                                        }
                                    })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
