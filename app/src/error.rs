//! The one error type of the app's server functions. It travels to the browser as JSON,
//! and, for a form posted without JavaScript, in the address the browser is sent back to,
//! so the page can show the same messages either way.

use domain::{ClientEdit, ValidationErrors};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppError {
    /// The input was refused; each problem names its field.
    Invalid(ValidationErrors),
    /// No such thing, or not one this user may see.
    NotFound,
    /// The page or action is not for this role (dashboards: managers and admins; API keys: admins).
    Forbidden,
    /// Someone else saved the client first: their values and version.
    Conflict {
        current: Box<ClientEdit>,
        version: u64,
    },
    /// The step cannot be done in the email's or client's present state; the message says
    /// why (e.g. the client unsubscribed, so the draft was withdrawn).
    Refused(String),
    /// The session ended; sign in again.
    SignedOut,
    /// Something failed on our side (details only in the server log).
    Unavailable,
}

impl AppError {
    /// The message for `field`, when the input was refused because of it.
    pub fn message_for(&self, field: &str) -> Option<String> {
        match self {
            Self::Invalid(errors) => errors.message_for(field).map(str::to_owned),
            _ => None,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(errors) => {
                let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
                write!(f, "Nothing was saved. Please check: {}.", fields.join(", "))
            }
            Self::NotFound => f.write_str("This no longer exists, or is not in your book."),
            Self::Forbidden => f.write_str("Your role does not allow this."),
            Self::Conflict { .. } => f.write_str(
                "Someone else changed this client while you were editing. Their version is shown below; make your change again and save.",
            ),
            Self::Refused(message) => f.write_str(message),
            Self::SignedOut => f.write_str("Your session has ended. Please sign in again."),
            Self::Unavailable => {
                f.write_str("Engage could not complete this just now; please try again.")
            }
        }
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // A form that could not be read is the user's input problem, not ours.
            ServerFnErrorErr::Args(message) => Self::Invalid(ValidationErrors::single(
                "form",
                format!("The form could not be read: {message}"),
            )),
            _ => Self::Unavailable,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::service::ServiceError> for AppError {
    fn from(error: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError;
        match error {
            ServiceError::Invalid(errors) => Self::Invalid(errors),
            ServiceError::NotFound => Self::NotFound,
            ServiceError::Forbidden => Self::Forbidden,
            ServiceError::Conflict(client) => Self::Conflict {
                current: Box::new(ClientEdit::of(&client)),
                version: client.version,
            },
            ServiceError::Refused { message, .. } => Self::Refused(message),
            ServiceError::Unavailable => Self::Unavailable,
        }
    }
}
