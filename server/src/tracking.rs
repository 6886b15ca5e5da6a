//! The tracked-link and open-pixel routes (`/t/{email}.{n}.{signature}`,
//! `/o/{email}.{signature}.gif`): public, signed per email, answered by the service.

use crate::startup::AppState;
use app::service::ServiceError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn not_valid() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::response::Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link not valid · Engage</title></head>\
             <body><main><h1>This link is not valid</h1><p>It may have been copied incompletely.</p></main></body></html>",
        ),
    )
        .into_response()
}

/// `GET /t/{email}.{n}.{signature}`: records the click and redirects to the link.
pub async fn follow(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((email, n, signature)) = processors::tracking::parse_click(&token) else {
        return not_valid();
    };
    match state
        .engage
        .follow_link(&state.tracking, email, n, &signature)
        .await
    {
        Ok(link) => Redirect::to(&link).into_response(),
        Err(ServiceError::NotFound) => not_valid(),
        Err(error) => {
            tracing::error!(%error, "a tracked link could not be followed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again in a moment.",
            )
                .into_response()
        }
    }
}

/// `GET /o/{email}.{signature}.gif`: records an open; always the pixel, never cached.
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if let Some((email, signature)) = processors::tracking::parse_open(&token)
        && let Err(error) = state
            .engage
            .record_open(&state.tracking, email, &signature)
            .await
        && !matches!(error, ServiceError::NotFound)
    {
        tracing::error!(%error, "an open could not be recorded");
    }
    let mut response = Response::new(Body::from(PIXEL));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
