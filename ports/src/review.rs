//! The expert in the loop: who reviews a draft, why a step is refused, what an approved
//! email carries to delivery, and the checks on what a stylist writes.

use crate::StoreError;
use domain::{ClientId, DraftText, EmailId, EmailStatus, StylistId, ValidationErrors};

/// Who is acting on an email, and which book they may touch (`None`: every book).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// Recorded with each step (the account's email address).
    pub name: String,
    pub scope: Option<StylistId>,
}

/// Why a review step was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such email, or not one this reviewer may see.
    #[error("no such email")]
    NotFound,
    /// Only drafts can be edited, approved, rejected or redrafted.
    #[error("the email is {}, not awaiting review", status.as_str())]
    NotDraft { status: EmailStatus },
    /// Only an email whose delivery failed can be sent again.
    #[error("the email is {}, not failed", status.as_str())]
    NotFailed { status: EmailStatus },
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which emails to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailFilter {
    pub scope: Option<StylistId>,
    pub client: Option<ClientId>,
    pub status: Option<EmailStatus>,
}

/// An approved email with what delivery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: EmailId,
    pub client_id: ClientId,
    pub client_name: String,
    pub client_email: String,
    pub stylist_name: String,
    pub stylist_email: String,
    pub text: DraftText,
}

/// Longest subject and body a stylist may write.
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 10_000;

/// A subject and body a stylist wrote, checked: both present, one-line subject, sizes.
/// A rejection's reason: trimmed, 1 to 500 characters.
pub fn check_reject_reason(reason: &str) -> Result<String, ValidationErrors> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ValidationErrors::single(
            "reason",
            "Say in a few words (at most 500 characters) why this draft is rejected.",
        ));
    }
    Ok(reason.to_owned())
}

pub fn check_text(subject: &str, body: &str) -> Result<DraftText, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let subject = subject.trim();
    let body = body.trim();
    if subject.is_empty() {
        errors
            .0
            .push(domain::FieldError::new("subject", "Write a subject."));
    } else if subject.chars().count() > MAX_SUBJECT_CHARS {
        errors.0.push(domain::FieldError::new(
            "subject",
            format!("Keep the subject to {MAX_SUBJECT_CHARS} characters or fewer."),
        ));
    } else if subject.chars().any(char::is_control) {
        errors.0.push(domain::FieldError::new(
            "subject",
            "Keep the subject to one line.",
        ));
    }
    if body.is_empty() {
        errors
            .0
            .push(domain::FieldError::new("body", "Write the email's text."));
    } else if body.chars().count() > MAX_BODY_CHARS {
        errors.0.push(domain::FieldError::new(
            "body",
            format!("Keep the text to {MAX_BODY_CHARS} characters or fewer."),
        ));
    }
    if errors.is_empty() {
        Ok(DraftText {
            subject: subject.to_owned(),
            body_text: body.replace("\r\n", "\n"),
        })
    } else {
        Err(errors)
    }
}
