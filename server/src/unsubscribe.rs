//! The unsubscribe link in every email: `GET` shows a confirmation button (so a mail
//! scanner that follows links unsubscribes nobody), `POST` unsubscribes — from that button
//! or from a mail client's one-click `List-Unsubscribe-Post` (RFC 8058). The link is signed
//! per client; anything else gets the same "link not valid" page.
//!
//! The same link is the only way back in: a client who unsubscribed sees a "Receive emails
//! again" button, which `POST /resubscribe` records as the client's own new opt-in. A
//! stylist, an API update or an import cannot undo a client's unsubscribe.

use crate::startup::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use domain::{ClientId, EmailConsent, ValidationErrors};
use ports::UpdateClientError;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Link {
    #[serde(default)]
    client: String,
    #[serde(default)]
    token: String,
}

/// A small page in the site's style. Nothing from the request is echoed except the
/// link's own parameters, escaped.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Engage</title><link rel=\"stylesheet\" href=\"{stylesheet}\"></head>\
         <body><main><section class=\"panel narrow\"><h1>{title}</h1>{body}</section></main></body></html>",
        stylesheet = crate::assets::stylesheet(),
    );
    (status, Html(html)).into_response()
}

fn invalid() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "<p>The unsubscribe link is incomplete or was changed. Please use the link from the email as it arrived.</p>",
    )
}

/// The link's parameters for a form's `action`, escaped.
fn query(link: &Link) -> String {
    let escape = domain::email::escape_html;
    format!(
        "client={}&amp;token={}",
        escape(&link.client),
        escape(&link.token)
    )
}

/// The button that undoes an unsubscribe.
fn resubscribe_form(link: &Link) -> String {
    format!(
        "<form method=\"post\" action=\"/resubscribe?{}\"><button type=\"submit\" class=\"secondary\">Receive emails again</button></form>",
        query(link)
    )
}

/// `GET /unsubscribe?client=…&token=…`: asks for confirmation, or, for a client who has
/// unsubscribed already, says so and offers to undo it.
pub async fn confirm(State(state): State<AppState>, Query(link): Query<Link>) -> Response {
    if !state.unsubscribe.verify(&link.client, &link.token) {
        return invalid();
    }
    let client = state
        .records
        .get_client(ClientId::new(link.client.clone()))
        .await;
    match client {
        Ok(Some(client))
            if matches!(client.profile.consent(), EmailConsent::Unsubscribed { .. }) =>
        {
            return page(
                StatusCode::OK,
                "You are unsubscribed",
                &format!(
                    "<p>You receive no emails from your stylist through Engage.</p>{}",
                    resubscribe_form(&link)
                ),
            );
        }
        Ok(Some(_)) => {}
        Ok(None) => return invalid(),
        Err(error) => {
            tracing::error!(%error, "unsubscribe page failed");
            return try_again();
        }
    }
    page(
        StatusCode::OK,
        "Unsubscribe from these emails?",
        &format!(
            "<p>You will not receive any more emails from your stylist through Engage.</p>\
             <form method=\"post\" action=\"/unsubscribe?{}\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            query(&link)
        ),
    )
}

/// Records the client's own consent choice from their signed link, as a change to the
/// client (so the pipeline sees it): `target` unless `already` holds. Idempotent. Answers
/// `done` once recorded, the "not valid" page for a bad link, "try again" on a failure.
async fn record_own_choice(
    state: &AppState,
    link: &Link,
    target: fn(chrono::DateTime<chrono::Utc>) -> EmailConsent,
    already: fn(EmailConsent) -> bool,
    what: &'static str,
    done: Response,
) -> Response {
    if !state.unsubscribe.verify(&link.client, &link.token) {
        return invalid();
    }
    let outcome = own_choice(
        state.records.as_ref(),
        ClientId::new(link.client.clone()),
        state.clock.now(),
        target,
        already,
    )
    .await;
    match outcome {
        Ok(_) => {
            tracing::info!(client_id = %link.client, "{what}");
            done
        }
        Err(UpdateClientError::NotFound) => invalid(),
        Err(error) => {
            tracing::error!(%error, "recording that the {what} failed");
            try_again()
        }
    }
}

/// Records a client's own consent choice made at `now` as a change to the client (so the
/// pipeline sees it): `target` unless `already` holds.
pub(crate) async fn own_choice(
    records: &dyn ports::Records,
    client: ClientId,
    now: chrono::DateTime<chrono::Utc>,
    target: fn(chrono::DateTime<chrono::Utc>) -> EmailConsent,
    already: fn(EmailConsent) -> bool,
) -> Result<(), UpdateClientError> {
    records
        .update_client(
            client,
            None,
            now,
            Box::new(move |client: &mut domain::Client| {
                if !already(client.profile.consent()) {
                    client.profile.set_consent(target(now));
                }
                Ok::<(), ValidationErrors>(())
            }),
        )
        .await
        .map(|_| ())
}

/// `POST /unsubscribe?client=…&token=…`: records the unsubscribe as a change to the client
/// (so the pipeline sees it and no further draft is written). Idempotent.
pub async fn unsubscribe(State(state): State<AppState>, Query(link): Query<Link>) -> Response {
    let done = page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!(
            "<p>You will not receive any more of these emails. If this was a mistake:</p>{}",
            resubscribe_form(&link)
        ),
    );
    record_own_choice(
        &state,
        &link,
        |at| EmailConsent::Unsubscribed { at },
        |consent| matches!(consent, EmailConsent::Unsubscribed { .. }),
        "client unsubscribed",
        done,
    )
    .await
}

/// `POST /resubscribe?client=…&token=…`: the client's own new opt-in, from their link
/// (the only way an unsubscribe is undone). Idempotent.
pub async fn resubscribe(State(state): State<AppState>, Query(link): Query<Link>) -> Response {
    let done = page(
        StatusCode::OK,
        "Welcome back",
        "<p>You will receive emails from your stylist again. Every email has a link to stop them.</p>",
    );
    record_own_choice(
        &state,
        &link,
        |at| EmailConsent::OptedIn { at },
        EmailConsent::allows_email,
        "client opted in again",
        done,
    )
    .await
}

fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record this just now. Please try the link again in a minute.</p>",
    )
}
