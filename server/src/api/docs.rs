//! The API's routes and its OpenAPI 3.1 document, built together from the handlers'
//! annotations (so a route cannot exist without its description), and the docs page.

use super::{Problem, clients, emails, import, keys, pipeline};
use crate::startup::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Engage API",
        description = "Clients, their engagement scores and the emails drafted for them. \
            Authenticate with an API key (`Authorization: Bearer ek_…`, created by an admin with \
            `engage apikey create`) or a signed-in session. Every error is an RFC 9457 problem \
            (`application/problem+json`) naming the field at fault. Request and response bodies \
            are the `domain` crate's types.",
        license(name = "Proprietary"),
    ),
    // Schemas the query parameters refer to (parameters do not register their own).
    components(schemas(
        Problem,
        domain::views::ClientSort,
        domain::score::Band,
        domain::ClientStatus,
        domain::EmailStatus
    )),
    modifiers(&Security),
    security(("api_key" = []), ("session" = [])),
    tags(
        (name = "clients", description = "Client records, activities, scores"),
        (name = "emails", description = "The review queue"),
        (name = "operations", description = "Dashboard, pipeline and dead letters (managers)"),
        (name = "api keys", description = "Keys for programs (admins)"),
    ),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ek_{id}_{secret}")
                    .description(Some("An API key, created by an admin."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The browser app's sign-in session.",
            ))),
        );
    }
}

/// The `/api/v1` routes and the OpenAPI document describing exactly them.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(clients::list_clients, clients::create_client))
        .routes(routes!(
            clients::get_client,
            clients::update_client,
            clients::close_client
        ))
        .routes(routes!(clients::record_activity))
        .routes(routes!(clients::record_fix))
        .routes(routes!(clients::client_score))
        .routes(routes!(clients::client_emails))
        .routes(routes!(clients::client_decisions))
        .routes(routes!(emails::list_emails))
        .routes(routes!(emails::approve_many))
        .routes(routes!(emails::get_email, emails::edit_email))
        .routes(routes!(emails::approve_email))
        .routes(routes!(emails::reject_email))
        .routes(routes!(emails::regenerate_email))
        .routes(routes!(emails::resend_email))
        .routes(routes!(pipeline::dashboard))
        .routes(routes!(pipeline::outcomes))
        .routes(routes!(pipeline::pipeline))
        .routes(routes!(pipeline::dead_letters))
        .routes(routes!(pipeline::redrive))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(crate::live::stream))
        .split_for_parts();
    // Imports may be far larger than other bodies.
    let (import_router, import_api) = OpenApiRouter::new()
        .routes(routes!(import::import_clients))
        .split_for_parts();
    openapi.merge(import_api);
    add_common_responses(&mut openapi);
    let router = router.merge(import_router.layer(DefaultBodyLimit::max(import::MAX_IMPORT_BYTES)));
    (router, openapi)
}

/// The answers every operation may give, added to each so the document lists every
/// status the API really uses: 401/429/503 everywhere, 403 where a role matters, 404
/// where the path names something, 400/413/415/422 where a body or query is read.
fn add_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations: [Option<&mut Operation>; 4] = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            let has_query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| {
                    matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
                });
            // OpenAPI requires a description on every response.
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = axum::http::StatusCode::from_bytes(status.as_bytes())
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Answer")
                        .to_owned();
                }
            }
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(problem(description)));
            };
            add("401", "No valid API key or session");
            add("403", "The key's or user's role does not allow this");
            add(
                "429",
                "The API key's rate limit is reached; see Retry-After",
            );
            add("503", "Engage could not complete this just now; retry");
            if path.contains('{') {
                add("404", "Nothing with this id (or not in your book)");
            }
            if has_body {
                add("400", "The body is not well-formed");
                add("413", "The body is too large");
                add("415", "The body is not of a supported content type");
                add("422", "Fields refused; `errors` names each");
            }
            if has_query {
                add("400", "A query parameter does not parse");
                add("422", "Query values refused; `errors` names each");
            }
        }
    }
}

/// `GET /api/openapi.json`: the document.
pub async fn openapi_json(
    axum::extract::State(spec): axum::extract::State<std::sync::Arc<String>>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.as_str().to_owned(),
    )
}

/// The document as served, built once.
pub fn openapi_text(openapi: &utoipa::openapi::OpenApi) -> String {
    let mut document = serde_json::to_value(openapi).expect("the OpenAPI document serializes");
    inline_tagged_variants(&mut document);
    serde_json::to_string_pretty(&document).expect("JSON serializes")
}

/// A `#[serde(tag = "type")]` enum whose variants wrap structs is generated as
/// `allOf: [{$ref: Variant}, {type tag}]`; with the variant's own
/// `additionalProperties: false` no object can satisfy both. Each such branch becomes one
/// object: the variant's properties and the tag, nothing else.
fn inline_tagged_variants(document: &mut serde_json::Value) {
    let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(|s| s.as_object())
        .cloned()
    else {
        return;
    };
    let Some(targets) = document
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    for schema in targets.values_mut() {
        let Some(branches) = schema.get_mut("oneOf").and_then(|b| b.as_array_mut()) else {
            continue;
        };
        for branch in branches {
            let Some([variant, tag]) = branch
                .get("allOf")
                .and_then(|a| a.as_array())
                .and_then(|a| <&[serde_json::Value; 2]>::try_from(a.as_slice()).ok())
            else {
                continue;
            };
            let Some(name) = variant["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                continue;
            };
            let Some(target) = schemas.get(name) else {
                continue;
            };
            let mut merged = target.clone();
            let fields = merged
                .as_object_mut()
                .expect("a struct's schema is an object");
            let properties = fields
                .entry("properties")
                .or_insert_with(|| serde_json::json!({}));
            if let (Some(properties), Some(tags)) =
                (properties.as_object_mut(), tag["properties"].as_object())
            {
                properties.extend(tags.clone());
            }
            let required = fields
                .entry("required")
                .or_insert_with(|| serde_json::json!([]));
            if let (Some(required), Some(tags)) =
                (required.as_array_mut(), tag["required"].as_array())
            {
                required.extend(tags.iter().cloned());
            }
            if let Some(description) = branch.get("description").cloned() {
                fields.insert("description".to_owned(), description);
            }
            *branch = merged;
        }
    }
}

/// `GET /api/docs`: every operation with its parameters and schemas, and a form to try
/// it with an API key (kept in this page only, never stored).
pub async fn docs_page() -> axum::response::Response {
    use axum::response::IntoResponse;
    let nonce = crate::security::nonce();
    let page = include_str!("docs.html")
        .replace("<script>", &format!("<script nonce=\"{nonce}\">"))
        .replace("<style>", &format!("<style nonce=\"{nonce}\">"));
    let policy = axum::http::HeaderValue::from_str(&crate::security::inline_policy(&nonce))
        .expect("a hex nonce makes a valid header");
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, policy)],
        Html(page),
    )
        .into_response()
}
