//! One email: a preview of what the client will read, and — while it is a draft — the
//! stylist's tools: edit the subject and text, approve and send, reject with a reason, or
//! ask the writer for a new draft. Every step is listed with who took it and when.

use crate::error::AppError;
use crate::form::{FormAction, PostForm};
use crate::routes::emails::SendAtChoice;
use crate::routes::{
    LoadError, PageStatus, action_error, field_error, format_instant, invalid, refresh_on_success,
};
use domain::EmailStatus;
use domain::views::EmailDetail;
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

/// Approves one draft; the answer is what to tell the stylist (worded on the server, so
/// the browser needs no calendar code).
#[server]
pub async fn approve_email(
    id: String,
    #[server(default)] send_at: String,
) -> Result<String, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let report = service
        .approve_emails(&user, vec![domain::EmailId::new(id)], &send_at)
        .await?;
    Ok(crate::routes::emails::approve_message(&report))
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
    let detail = Resource::new(move || id.get(), load_email);
    view! {
        <PageStatus/>
        // The status, preview and history follow the pipeline and reviewers (crate::live).
        <div id="email-live" data-live="">
        <Transition fallback=|| view! { <section class="panel"><p>"Loading email…"</p></section> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(email) => view! { <Email email/> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Transition>
        </div>
        // The tools are rebuilt when the words or the status change underneath them (a
        // redraft arrived, someone else acted), but never while the stylist is typing.
        <div id="review-live" data-live="">
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                detail.await.ok().and_then(|email| {
                    let status = email.summary.status;
                    matches!(status, EmailStatus::Drafted | EmailStatus::Failed).then(|| view! {
                        <EmailReview
                            id=email.summary.id.as_str().to_owned()
                            subject=email.summary.subject.clone()
                            body=email.body_text.clone()
                            status
                        />
                    })
                })
            })}
        </Transition>
        </div>
    }
}

/// The stylist's tools while the email is a draft, and "Send again" once it failed: an
/// island. What each action did goes to the page's status line, which stays when the
/// tools are rebuilt or gone.
#[island]
fn EmailReview(id: String, subject: String, body: String, status: EmailStatus) -> impl IntoView {
    let save = FormAction::new::<SaveEmail>();
    let approve = FormAction::new::<ApproveEmail>();
    let reject = FormAction::new::<RejectEmail>();
    let redraft = FormAction::new::<RegenerateEmail>();
    let resend = FormAction::new::<ResendEmail>();
    refresh_on_success(save);
    refresh_on_success(approve);
    refresh_on_success(reject);
    refresh_on_success(redraft);
    refresh_on_success(resend);
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
                    Some(Ok(message)) => Some(message),
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
    // Approved, rejected or queued again: the tools are done with.
    let done = move || {
        approve.value().with(|v| matches!(v, Some(Ok(_))))
            || reject.value().with(|v| matches!(v, Some(Ok(()))))
            || resend.value().with(|v| matches!(v, Some(Ok(()))))
    };
    Effect::new(move |_| {
        if let Some(message) = message.get() {
            crate::live::announce(&message);
        }
    });
    let (id, subject, body) = (
        StoredValue::new(id),
        StoredValue::new(subject),
        StoredValue::new(body),
    );
    view! {
        {move || (!done()).then(|| match status {
            EmailStatus::Drafted => view! {
                <ReviewTools id=id.get_value() subject=subject.get_value() body=body.get_value() save approve reject redraft/>
            }.into_any(),
            _ => view! {
                <section class="panel" aria-labelledby="resend-heading">
                    <h2 id="resend-heading">"Sending failed"</h2>
                    <p>"Every retry failed; the reason is in the history above. Once the cause is fixed, a manager can send it again."</p>
                    <PostForm action=resend attr:id="resend-form">
                        <input type="hidden" name="id" value=id.get_value()/>
                        <button type="submit" disabled=move || resend.pending().get()>"Send again"</button>
                    </PostForm>
                </section>
            }.into_any(),
        })}
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
    id: String,
    subject: String,
    body: String,
    save: FormAction<()>,
    approve: FormAction<String>,
    reject: FormAction<()>,
    redraft: FormAction<()>,
) -> impl IntoView {
    let save_error = action_error(save);
    let reject_error = action_error(reject);
    let redraft_error = action_error(redraft);
    let (approve_id, save_id, reject_id) = (id.clone(), id.clone(), id.clone());
    view! {
        <section class="panel" aria-labelledby="tools-heading">
            <h2 id="tools-heading">"Review"</h2>
            <div class="review-actions">
                <PostForm action=approve attr:id="approve-form">
                    <input type="hidden" name="id" value=approve_id/>
                    <SendAtChoice id="send-at"/>
                    <button type="submit" disabled=move || approve.pending().get()>"Approve and send"</button>
                </PostForm>
            </div>
            <PostForm action=save attr:class="stacked-form" attr:id="edit-form" attr:novalidate=true>
                <h3>"Edit"</h3>
                <input type="hidden" name="id" value=save_id/>
                <div class="field">
                    <label for="email-subject">"Subject"</label>
                    <input id="email-subject" name="subject" type="text" maxlength="200" value=subject aria-invalid=invalid(save_error, "subject")/>
                    {field_error(save_error, "subject", "Subject")}
                </div>
                <div class="field">
                    <label for="email-body">"Text"</label>
                    <textarea id="email-body" name="body" rows="10" aria-invalid=invalid(save_error, "body")>{body}</textarea>
                    {field_error(save_error, "body", "Text")}
                </div>
                <button type="submit" class="secondary" disabled=move || save.pending().get()>"Save changes"</button>
            </PostForm>
            <PostForm action=reject attr:class="stacked-form" attr:id="reject-form" attr:novalidate=true>
                <h3>"Reject"</h3>
                <input type="hidden" name="id" value=reject_id/>
                <div class="field">
                    <label for="reject-reason">"Why is this draft not right?"</label>
                    <input id="reject-reason" name="reason" type="text" maxlength="500" aria-invalid=invalid(reject_error, "reason")/>
                    {field_error(reject_error, "reason", "Reason")}
                </div>
                <button type="submit" class="danger" disabled=move || reject.pending().get()>"Reject draft"</button>
            </PostForm>
            <PostForm action=redraft attr:class="stacked-form" attr:id="redraft-form" attr:novalidate=true>
                <h3>"Ask for a new draft"</h3>
                <input type="hidden" name="id" value=id/>
                <div class="field">
                    <label for="redraft-instruction">"What should change? (optional)"</label>
                    <input id="redraft-instruction" name="instruction" type="text" maxlength="200" placeholder="Mention the autumn edit" aria-invalid=invalid(redraft_error, "instruction")/>
                    {field_error(redraft_error, "instruction", "Instruction")}
                </div>
                <button type="submit" class="secondary" disabled=move || redraft.pending().get()>"Redraft"</button>
            </PostForm>
        </section>
    }
}
