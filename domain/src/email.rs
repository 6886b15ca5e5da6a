//! Emails to clients: what kind they are, where they are in review, and the text a writer drafted.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable identifier of an email (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct EmailId(String);

impl EmailId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an email is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// A new client's first note from their stylist.
    Welcome,
    /// A client entering "At risk": invite them back.
    WinBack,
    /// A client cooling off: a light touch to ask how things are.
    CheckIn,
    /// A client thriving: say thank you.
    Celebration,
}

impl EmailKind {
    pub const ALL: [Self; 4] = [
        Self::Welcome,
        Self::WinBack,
        Self::CheckIn,
        Self::Celebration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::WinBack => "win_back",
            Self::CheckIn => "check_in",
            Self::Celebration => "celebration",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// How the kind reads on screen.
    pub fn label(self) -> &'static str {
        match self {
            Self::Welcome => "Welcome",
            Self::WinBack => "Win-back",
            Self::CheckIn => "Check-in",
            Self::Celebration => "Celebration",
        }
    }
}

/// Where an email is in the expert-in-the-loop review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// Written by a writer, waiting for the stylist.
    Drafted,
    Approved,
    Sent,
    Rejected,
    /// Delivery failed after every retry; a manager may send it again.
    Failed,
    /// Not sent because the client could no longer be emailed (unsubscribed, no consent or
    /// closed) when it was approved or due to go out; see [`crate::consent`].
    Withdrawn,
}

impl EmailStatus {
    pub const ALL: [Self; 6] = [
        Self::Drafted,
        Self::Approved,
        Self::Sent,
        Self::Rejected,
        Self::Failed,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drafted => "drafted",
            Self::Approved => "approved",
            Self::Sent => "sent",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }
}

/// The words of an email as a writer produced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftText {
    pub subject: String,
    pub body_text: String,
}

/// Escapes text for inclusion in HTML, so client data can never become markup.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

impl DraftText {
    /// The HTML body: each paragraph of the text, escaped, in its own `<p>`.
    pub fn body_html(&self) -> String {
        self.body_text
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| format!("<p>{}</p>", escape_html(p.trim()).replace('\n', "<br>")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_body_escapes_client_text() {
        let draft = DraftText {
            subject: "Hi".into(),
            body_text: "Hi <script>alert(1)</script> & co\nline two\n\nNext".into(),
        };
        assert_eq!(
            draft.body_html(),
            "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co<br>line two</p>\n<p>Next</p>"
        );
    }

    #[test]
    fn kinds_and_statuses_round_trip_through_text() {
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
        }
        for status in EmailStatus::ALL {
            assert_eq!(EmailStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(EmailKind::parse("spam"), None);
    }
}
