//! One module per page, and the small pieces they share.

pub mod api_keys;
pub mod client_detail;
pub mod client_form;
pub mod clients;
pub mod dashboard;
pub mod dlq;
pub mod email_detail;
pub mod emails;
pub mod signin;

use crate::error::AppError;
use crate::form::FormAction;
use domain::Band;
use leptos::prelude::*;
use serde::de::DeserializeOwned;

/// Percent-encodes a URL query value (everything but unreserved characters).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a plain form post (one without JavaScript, or outside an island) back to `path`
/// with what happened in the query, so the page can say it. An island's own post is
/// answered in place instead.
#[cfg(feature = "ssr")]
pub(crate) fn redirect_with(path: &str, outcome: &[(&str, String)]) {
    let plain_post = use_context::<http::request::Parts>().is_some_and(|request| {
        request
            .headers
            .get(http::header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    });
    if !plain_post {
        return;
    }
    let query: Vec<String> = outcome
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect();
    leptos_axum::redirect(&format!("{path}?{}", query.join("&")));
}

/// How an instant reads in a table: UTC, to the minute.
pub(crate) fn format_instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A score with its band, coloured by band; "Scoring…" until the pipeline scored it.
#[component]
pub fn BandBadge(score: Option<u8>, band: Option<Band>) -> impl IntoView {
    match (score, band) {
        (Some(score), Some(band)) => view! {
            <span class=format!("band band-{}", band.as_str())>{score}" · "{band.label()}</span>
        }
        .into_any(),
        _ => view! { <span class="band band-pending">"Scoring…"</span> }.into_any(),
    }
}

/// The message under a form field when the last submission was refused because of it.
/// `error` is the form's last outcome.
pub(crate) fn field_error(
    error: Signal<Option<AppError>>,
    field: &'static str,
    label: &'static str,
) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.message_for(field)).map(|message| {
            view! {
                <p class="field-error" id=format!("{}-error", field.replace(['.', '[', ']'], "-")) data-field=field role="alert">
                    {format!("{label}: {message}")}
                </p>
            }
        })
    }
}

/// `aria-invalid` for a field, from the form's last outcome.
pub(crate) fn invalid(
    error: Signal<Option<AppError>>,
    field: &'static str,
) -> impl Fn() -> &'static str {
    move || {
        if error.get().is_some_and(|e| e.message_for(field).is_some()) {
            "true"
        } else {
            "false"
        }
    }
}

/// The error of a form's last submission, if it failed.
pub(crate) fn action_error<O>(action: FormAction<O>) -> Signal<Option<AppError>>
where
    O: DeserializeOwned + Send + Sync + 'static,
{
    let value = action.value();
    Signal::derive(move || match &*value.read() {
        Some(Err(error)) => Some(error.clone()),
        _ => None,
    })
}

/// After an island's action succeeds, the page's live parts are fetched again at once
/// (crate::live), so what the action changed shows without waiting for the pipeline.
pub(crate) fn refresh_on_success<O>(action: FormAction<O>)
where
    O: DeserializeOwned + Send + Sync + 'static,
{
    let value = action.value();
    Effect::new(move |_| {
        if value.with(|v| matches!(v, Some(Ok(_)))) {
            crate::live::refresh_now();
        }
    });
}

/// The page's status line, outside its live regions: what the last action did. Islands
/// write to it ([`crate::live::announce`]); without JavaScript the server shows `message`,
/// or the error a plain post came back with.
#[component]
pub fn PageStatus(#[prop(optional_no_strip)] message: Option<String>) -> impl IntoView {
    let message = message.or_else(|| crate::form::error_in_address(None).map(|e| e.to_string()));
    view! { <p class="form-status" role="status" id="page-status">{message}</p> }
}

/// A status line under a form: what the last submission did.
#[component]
pub fn FormStatus(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    view! { <p class="form-status" role="status">{move || message.get()}</p> }
}

/// Shown instead of a page when it cannot be loaded.
#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        match error {
            AppError::NotFound => response.set_status(http::StatusCode::NOT_FOUND),
            AppError::Forbidden => response.set_status(http::StatusCode::FORBIDDEN),
            _ => {}
        }
    }
    let title = match error {
        AppError::NotFound => "Not found",
        AppError::Forbidden => "Not for your role",
        AppError::SignedOut => "Signed out",
        _ => "Something went wrong",
    };
    view! {
        <section class="panel">
            <h1>{title}</h1>
            <p class="error">{error.to_string()}</p>
            <p><a href="/">"Back to clients"</a></p>
        </section>
    }
}
