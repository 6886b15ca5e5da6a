//! Engage's shared vocabulary: the types every other crate (and the browser) speaks,
//! and the pure business rules over them. Nothing here performs I/O, so it compiles
//! for native targets and for `wasm32-unknown-unknown` alike.

/// `ToSchema` for a type that goes over the wire as another (`serde(try_from, into)`):
/// the schema is the wire type's, under the type's own name.
#[cfg(feature = "openapi")]
macro_rules! schema_as {
    ($ty:ty, $wire:ty, $name:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$wire as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                <$wire as utoipa::ToSchema>::schemas(schemas)
            }
        }
    };
}

pub mod api;
pub mod bgnbd;
pub mod client;
pub mod consent;
pub mod dashboard;
pub mod email;
pub mod event;
pub mod outcomes;
pub mod policy;
pub mod profile;
pub mod sample;
pub mod schedule;
pub mod score;
pub mod user;
pub mod validation;
pub mod view_facts;
pub mod views;

pub use client::{
    Client, ClientEdit, ClientEmail, ClientId, ClientInput, ClientName, ClientStatus, NewClient,
    NewStylist, StylistId,
};
pub use email::{DraftText, EmailId, EmailKind, EmailStatus};
pub use event::{ChangeRecord, DomainEvent, EventId, EventKind, FieldChange};
pub use profile::{Activity, EmailConsent, Profile, ProfileInput};
pub use score::{Band, EngagementScore, Factor};
pub use validation::{FieldError, ValidationErrors};
