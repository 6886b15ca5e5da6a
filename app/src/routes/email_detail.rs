//! One email: a preview of what the client will read, and — while it is a draft — the
//! stylist's tools: edit the subject and text, approve and send, reject with a reason, or
//! ask the writer for a new draft. Every step is listed with who took it and when.

use crate::error::AppError;
use crate::live::use_change_stamp;
use crate::routes::emails::{SendAtChoice, approve_message};
use crate::routes::{FormStatus, LoadError, action_error, field_error, format_instant, invalid};
use domain::EmailStatus;
use domain::views::{ApproveReport, EmailDetail};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[server]
pub async fn load_email(id: String) -> Result<EmailDetail, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service
        .email_detail(&user, domain::EmailId::new(id))
        .await?)
}

#[server]
pub async fn save_email(id: String, subject: String, body: String) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service
        .edit_email(&user, domain::EmailId::new(id), subject, body)
        .await?)
}

#[server]
pub async fn approve_email(
    id: String,
    #[server(default)] send_at: String,
) -> Result<ApproveReport, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service
        .approve_emails(&user, vec![domain::EmailId::new(id)], &send_at)
        .await?)
}

/// Sends a failed email again (managers and admins).
#[server]
pub async fn resend_email(id: String) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service
        .resend_email(&user, domain::EmailId::new(id))
        .await?)
}

#[server]
pub async fn reject_email(id: String, #[server(default)] reason: String) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service
        .reject_email(&user, domain::EmailId::new(id), reason)
        .await?)
}

#[server]
pub async fn regenerate_email(
    id: String,
    #[server(default)] instruction: String,
) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    service
        .regenerate_email(&user, domain::EmailId::new(id), Some(instruction))
        .await?;
    Ok(())
}

/// `/emails/:id`.
#[component]
pub fn EmailDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let save = ServerAction::<SaveEmail>::new();
    let approve = ServerAction::<ApproveEmail>::new();
    let reject = ServerAction::<RejectEmail>::new();
    let redraft = ServerAction::<RegenerateEmail>::new();
    let resend = ServerAction::<ResendEmail>::new();
    let changes = use_change_stamp();
    let acted = move || {
        save.version().get()
            + approve.version().get()
            + reject.version().get()
            + redraft.version().get()
            + resend.version().get()
    };
    // The preview and history follow every change; the review forms are rebuilt only when
    // the email's words or status change underneath them (a redraft arrived, someone else
    // acted), so a refresh never throws away what the stylist is typing.
    let detail = Resource::new(
        move || (id.get(), changes.get(), acted()),
        |(id, _, _)| load_email(id),
    );
    let (rewritten, set_rewritten) = signal(0_u64);
    let seen = StoredValue::new(None::<(String, String, EmailStatus)>);
    Effect::new(move |_| {
        if let Some(Ok(email)) = detail.get() {
            let now = (
                email.summary.subject.clone(),
                email.body_text.clone(),
                email.summary.status,
            );
            let before = seen.get_value();
            seen.set_value(Some(now.clone()));
            if before.is_some_and(|b| b != now) {
                set_rewritten.update(|n| *n += 1);
            }
        }
    });
    let tools = Resource::new(
        move || (id.get(), rewritten.get()),
        |(id, _)| load_email(id),
    );
    let message = Signal::derive(move || {
        let outcome = |done: &str, value: Option<Result<(), AppError>>| match value {
            Some(Ok(())) => Some(done.to_owned()),
            Some(Err(error)) => Some(error.to_string()),
            None => None,
        };
        // The most recent action's outcome.
        let latest = [
            (
                save.version().get(),
                outcome("Saved your changes.", save.value().get()),
            ),
            (
                approve.version().get(),
                match approve.value().get() {
                    Some(Ok(report)) => Some(approve_message(&report)),
                    Some(Err(error)) => Some(error.to_string()),
                    None => None,
                },
            ),
            (
                reject.version().get(),
                outcome(
                    "Rejected. The client will not receive this draft.",
                    reject.value().get(),
                ),
            ),
            (
                redraft.version().get(),
                outcome(
                    "A new draft is on its way; it replaces this one in a moment.",
                    redraft.value().get(),
                ),
            ),
            (
                resend.version().get(),
                outcome("Queued to be sent again.", resend.value().get()),
            ),
        ];
        latest
            .into_iter()
            .filter(|(_, m)| m.is_some())
            .max_by_key(|(v, _)| *v)
            .and_then(|(_, m)| m)
    });
    view! {
        <FormStatus message/>
        <Transition fallback=|| view! { <section class="panel"><p>"Loading email…"</p></section> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(email) => view! { <Email email/> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                tools.await.ok().filter(|e| e.summary.status == EmailStatus::Drafted).map(|email| {
                    let id = email.summary.id.as_str().to_owned();
                    view! { <ReviewTools email id save approve reject redraft/> }
                })
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                tools.await.ok().filter(|e| e.summary.status == EmailStatus::Failed).map(|email| {
                    let id = email.summary.id.as_str().to_owned();
                    view! {
                        <section class="panel" aria-labelledby="resend-heading">
                            <h2 id="resend-heading">"Sending failed"</h2>
                            <p>"Every retry failed; the reason is in the history below. Once the cause is fixed, a manager can send it again."</p>
                            <ActionForm action=resend attr:id="resend-form">
                                <input type="hidden" name="id" value=id/>
                                <button type="submit" disabled=move || resend.pending().get()>"Send again"</button>
                            </ActionForm>
                        </section>
                    }
                })
            })}
        </Transition>
    }
}

#[component]
fn Email(email: EmailDetail) -> impl IntoView {
    let summary = &email.summary;
    let paragraphs: Vec<String> = email.body_text.split("\n\n").map(str::to_owned).collect();
    view! {
        <section class="panel">
            <div class="list-header">
                <h1>{summary.kind.label()}" email to "{summary.client_name.clone()}</h1>
                <span class=format!("status status-{}", summary.status.as_str()) id="email-status">{summary.status.as_str()}</span>
            </div>
            <p class="meta">
                "To "{email.client_email.clone()}" · written by "{summary.writer.clone()}
                {email.edited.then_some(", edited by the stylist")}" · "{format_instant(summary.created_at)}" · "
                <a href=format!("/clients/{}", summary.client_id)>"Open client"</a>
            </p>
            <p class="reason"><strong>"Why: "</strong>{email.reason.clone()}</p>
            {email.reject_reason.clone().map(|r| view! { <p class="reason"><strong>"Rejected: "</strong>{r}</p> })}
            {email.withdrawn.map(|r| view! { <p class="reason" id="withdrawn-reason"><strong>"Not sent: "</strong>{r.to_string()}"."</p> })}
            {email.send_after.filter(|_| summary.status == EmailStatus::Approved).map(|at| view! {
                <p class="reason" id="send-after"><strong>"Scheduled: "</strong>"goes out at "{format_instant(at)}"."</p>
            })}
            {email.conversion.map(|c| view! {
                <p class="reason" id="conversion"><strong>"Then bought: "</strong>{format!(
                    "{c}, within the attribution window after this email was decided."
                )}</p>
            })}
            <article class="preview" aria-label="Preview">
                <h2 class="preview-subject">{summary.subject.clone()}</h2>
                {paragraphs.into_iter().map(|p| view! { <p>{p}</p> }).collect_view()}
            </article>
        </section>
        <section class="panel" aria-labelledby="review-heading">
            <h2 id="review-heading">"Review history"</h2>
            {if email.reviews.is_empty() {
                view! { <p class="empty">"Not reviewed yet."</p> }.into_any()
            } else {
                view! {
                    <ol class="timeline">
                        {email.reviews.into_iter().map(|r| view! {
                            <li>
                                <time>{format_instant(r.at)}</time>" "<span>{r.action.replace('_', " ")}</span>
                                " — "<span class="actor">{r.actor}</span>
                                {r.note.map(|n| view! { <span>": "{n}</span> })}
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn ReviewTools(
    email: EmailDetail,
    id: String,
    save: ServerAction<SaveEmail>,
    approve: ServerAction<ApproveEmail>,
    reject: ServerAction<RejectEmail>,
    redraft: ServerAction<RegenerateEmail>,
) -> impl IntoView {
    let save_error = action_error(save);
    let reject_error = action_error(reject);
    let redraft_error = action_error(redraft);
    let (approve_id, save_id, reject_id) = (id.clone(), id.clone(), id.clone());
    view! {
        <section class="panel" aria-labelledby="tools-heading">
            <h2 id="tools-heading">"Review"</h2>
            <div class="review-actions">
                <ActionForm action=approve attr:id="approve-form">
                    <input type="hidden" name="id" value=approve_id/>
                    <SendAtChoice id="send-at"/>
                    <button type="submit" disabled=move || approve.pending().get()>"Approve and send"</button>
                </ActionForm>
            </div>
            <ActionForm action=save attr:class="stacked-form" attr:id="edit-form" attr:novalidate=true>
                <h3>"Edit"</h3>
                <input type="hidden" name="id" value=save_id/>
                <div class="field">
                    <label for="email-subject">"Subject"</label>
                    <input id="email-subject" name="subject" type="text" maxlength="200" value=email.summary.subject.clone() aria-invalid=invalid(save_error, "subject")/>
                    {field_error(save_error, "subject", "Subject")}
                </div>
                <div class="field">
                    <label for="email-body">"Text"</label>
                    <textarea id="email-body" name="body" rows="10" aria-invalid=invalid(save_error, "body")>{email.body_text.clone()}</textarea>
                    {field_error(save_error, "body", "Text")}
                </div>
                <button type="submit" class="secondary" disabled=move || save.pending().get()>"Save changes"</button>
            </ActionForm>
            <ActionForm action=reject attr:class="stacked-form" attr:id="reject-form" attr:novalidate=true>
                <h3>"Reject"</h3>
                <input type="hidden" name="id" value=reject_id/>
                <div class="field">
                    <label for="reject-reason">"Why is this draft not right?"</label>
                    <input id="reject-reason" name="reason" type="text" maxlength="500" aria-invalid=invalid(reject_error, "reason")/>
                    {field_error(reject_error, "reason", "Reason")}
                </div>
                <button type="submit" class="danger" disabled=move || reject.pending().get()>"Reject draft"</button>
            </ActionForm>
            <ActionForm action=redraft attr:class="stacked-form" attr:id="redraft-form" attr:novalidate=true>
                <h3>"Ask for a new draft"</h3>
                <input type="hidden" name="id" value=id/>
                <div class="field">
                    <label for="redraft-instruction">"What should change? (optional)"</label>
                    <input id="redraft-instruction" name="instruction" type="text" maxlength="200" placeholder="Mention the autumn edit" aria-invalid=invalid(redraft_error, "instruction")/>
                    {field_error(redraft_error, "instruction", "Instruction")}
                </div>
                <button type="submit" class="secondary" disabled=move || redraft.pending().get()>"Redraft"</button>
            </ActionForm>
        </section>
    }
}
