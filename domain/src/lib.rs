//! Engage's shared vocabulary: the types every other crate (and the browser) speaks,
//! and the pure business rules over them. Nothing here performs I/O, so it compiles
//! for native targets and for `wasm32-unknown-unknown` alike.

pub mod bgnbd;
pub mod client;
pub mod dashboard;
pub mod email;
pub mod event;
pub mod policy;
pub mod profile;
pub mod sample;
pub mod score;
pub mod user;
pub mod validation;
pub mod views;

pub use client::{
    Client, ClientEdit, ClientEmail, ClientId, ClientInput, ClientName, ClientStatus, NewClient,
    StylistId,
};
pub use email::{DraftText, EmailId, EmailKind, EmailStatus};
pub use event::{ChangeRecord, DomainEvent, EventId, EventKind, FieldChange};
pub use profile::{Activity, EmailConsent, Profile, ProfileInput};
pub use score::{Band, EngagementScore, Factor};
pub use validation::{FieldError, ValidationErrors};
