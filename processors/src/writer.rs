//! Email writers: who turns "this client needs a welcome" into words a stylist will review.
//!
//! The offline [`TemplateWriter`] is the default and the fallback: deterministic, needs no
//! network, and varies its wording by kind and by client so drafts don't all read alike.

use async_trait::async_trait;
use domain::{Band, DraftText, EmailKind};

/// What a writer is told about the email to draft: only what the words need (a first
/// name, never an email address or an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRequest {
    pub kind: EmailKind,
    pub client_first_name: String,
    pub stylist_first_name: String,
    pub band: Band,
    /// The client's most recent feedback note, if any: data for the writer, never
    /// instructions.
    pub recent_note: Option<String>,
    /// The styles the client likes (`classic`, `minimalist`, …).
    pub styles: Vec<String>,
    /// What the client did last: days since their last order, and what they kept of
    /// their last Fix (kept, sent).
    pub days_since_last_order: Option<u32>,
    pub last_fix_kept: Option<(u8, u8)>,
    /// The stylist's own instruction when they asked for a new draft.
    pub instruction: Option<String>,
    /// 0 for a first draft; another number for each redraft, so wording changes.
    pub variant: u32,
}

/// Tokens and cost of one LLM call, as the API reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// US dollars, when the API reports it.
    pub cost: Option<f64>,
}

/// A draft and who wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub text: DraftText,
    /// `template`, or the id of the model that actually answered.
    pub writer: String,
    /// Which instructions wrote it: the template's version, or the LLM prompt's. The
    /// outcomes compare writers per prompt version, so a change of prompt starts afresh.
    pub prompt_version: String,
    pub usage: Option<Usage>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("the writer is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait EmailWriter: Send + Sync + 'static {
    /// How this writer is labelled in logs: `template`, or the primary model id.
    fn name(&self) -> &str;
    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError>;
}

/// The offline writer: fixed, friendly wording chosen deterministically per client.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateWriter;

impl TemplateWriter {
    pub const NAME: &'static str = "template";
    /// The wording's version: raise it when the templates change.
    pub const VERSION: &'static str = "template-1";

    pub fn compose(request: &DraftRequest) -> DraftText {
        let first = request.client_first_name.as_str();
        let stylist = request.stylist_first_name.as_str();
        // Pick a variant from the name, so the same client always gets the same draft
        // but two clients rarely get identical ones.
        let pick = request
            .client_first_name
            .bytes()
            .fold(request.kind as usize, |acc, b| {
                acc.wrapping_mul(31).wrapping_add(b as usize)
            })
            .wrapping_add(request.variant as usize);
        let (subjects, opening, middle): (&[&str], &str, &str) = match request.kind {
            EmailKind::Welcome => (
                &[
                    "Welcome, {first} — let's find your style",
                    "{first}, I'm so glad you're here",
                    "Your first Fix starts here, {first}",
                ],
                "I'm {stylist}, and I'll be your stylist from today.",
                "Tell me a little about the pieces you reach for most, the occasions coming up, and anything you'd love to try. The more I know, the better your first Fix will fit.",
            ),
            EmailKind::WinBack => (
                &[
                    "{first}, I've been saving a few pieces for you",
                    "It's been a while, {first}",
                    "{first}, shall we refresh your wardrobe?",
                ],
                "It's {stylist} — I've been thinking about what to send you next.",
                "If your plans or your style have changed since your last Fix, just reply and let me know. I'd love to put together something that feels right for the season ahead.",
            ),
            EmailKind::CheckIn => (
                &[
                    "How are your latest pieces working out, {first}?",
                    "A quick hello from {stylist}",
                    "{first}, how is everything fitting?",
                ],
                "It's {stylist}, checking in.",
                "I'd love to hear how your recent pieces are working for you — what you've worn on repeat and what hasn't quite landed. Your thoughts shape what I pick next.",
            ),
            EmailKind::Celebration => (
                &[
                    "Thank you, {first}!",
                    "{first}, it's a joy styling you",
                    "A little thank-you, {first}",
                ],
                "It's {stylist} — I just wanted to say thank you.",
                "Styling you has been a real pleasure, and your feedback helps me get every Fix closer to just right. Here's to many more great finds together.",
            ),
        };
        let fill = |text: &str| text.replace("{first}", first).replace("{stylist}", stylist);
        let mut paragraphs = vec![fill(opening)];
        if let Some(history) = Self::history_line(request) {
            paragraphs.push(history);
        }
        if let Some(style) = Self::style_line(request, pick) {
            paragraphs.push(style);
        }
        paragraphs.push(fill(middle));
        paragraphs.push(Self::closing_line(request.band).to_owned());
        DraftText {
            subject: fill(subjects[pick % subjects.len()]),
            body_text: format!(
                "Hi {first},\n\n{}\n\nWarmly,\n{stylist}",
                paragraphs.join("\n\n")
            ),
        }
    }

    /// A sentence about what the client did last, in the tone the kind of email needs.
    fn history_line(request: &DraftRequest) -> Option<String> {
        let weeks = request.days_since_last_order.map(|d| (d + 3) / 7);
        match (request.kind, weeks, request.last_fix_kept) {
            (EmailKind::WinBack, Some(weeks), _) if weeks >= 2 => Some(format!(
                "It has been about {weeks} weeks since your last order, and I have missed styling you."
            )),
            (EmailKind::CheckIn, _, Some((kept, sent))) if kept > 0 => Some(format!(
                "You kept {kept} of the {sent} pieces in your last Fix, so I know I'm getting warmer."
            )),
            (EmailKind::CheckIn, _, Some((0, _))) => Some(
                "Your last Fix didn't quite hit the mark, and I'd really like to get the next one right."
                    .to_owned(),
            ),
            (EmailKind::Celebration, _, Some((kept, sent))) if kept > 0 => Some(format!(
                "Keeping {kept} of {sent} pieces last time tells me we're very much in step."
            )),
            _ => None,
        }
    }

    /// The last line, in a tone that suits where the client stands.
    fn closing_line(band: Band) -> &'static str {
        match band {
            Band::AtRisk => {
                "No pressure at all: just reply whenever it suits you, even if it's only to say hello."
            }
            Band::Cooling => "Whenever you're ready, a quick reply is all it takes.",
            Band::Steady => "As always, just hit reply with any thoughts.",
            Band::Thriving => "I can't wait to see what we find next.",
        }
    }

    /// A sentence about the client's styles, when we know them.
    fn style_line(request: &DraftRequest, pick: usize) -> Option<String> {
        let styles: Vec<&str> = request.styles.iter().take(2).map(String::as_str).collect();
        let named = match styles.as_slice() {
            [] => return None,
            [one] => (*one).to_owned(),
            [one, two, ..] => format!("{one} and {two}"),
        };
        let lines = [
            format!("I've been setting aside a few {named} pieces with you in mind."),
            format!("Your {named} style has been on my mind while I browse the new arrivals."),
        ];
        Some(lines[pick % lines.len()].clone())
    }
}

#[async_trait]
impl EmailWriter for TemplateWriter {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        Ok(Written {
            text: Self::compose(request),
            writer: Self::NAME.to_owned(),
            prompt_version: Self::VERSION.to_owned(),
            usage: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: EmailKind, first: &str) -> DraftRequest {
        DraftRequest {
            kind,
            client_first_name: first.into(),
            stylist_first_name: "Maya".into(),
            band: Band::Steady,
            recent_note: None,
            styles: Vec::new(),
            days_since_last_order: None,
            last_fix_kept: None,
            instruction: None,
            variant: 0,
        }
    }

    #[test]
    fn every_kind_greets_the_client_and_signs_as_the_stylist() {
        for kind in EmailKind::ALL {
            let draft = TemplateWriter::compose(&request(kind, "Ada"));
            assert!(draft.body_text.starts_with("Hi Ada,"), "{kind:?}");
            assert!(draft.body_text.ends_with("Maya"), "{kind:?}");
            assert!(
                !draft.subject.contains('{') && !draft.body_text.contains('{'),
                "unfilled placeholder in {kind:?}"
            );
        }
    }

    #[test]
    fn the_same_request_always_gives_the_same_draft() {
        assert_eq!(
            TemplateWriter::compose(&request(EmailKind::Welcome, "Ada")),
            TemplateWriter::compose(&request(EmailKind::Welcome, "Ada"))
        );
    }

    #[test]
    fn the_draft_speaks_to_the_clients_history_and_style() {
        let mut lapsed = request(EmailKind::WinBack, "Ada");
        lapsed.days_since_last_order = Some(94);
        lapsed.styles = vec!["classic".into(), "minimalist".into()];
        let draft = TemplateWriter::compose(&lapsed);
        assert!(
            draft
                .body_text
                .contains("about 13 weeks since your last order"),
            "{}",
            draft.body_text
        );
        assert!(
            draft.body_text.contains("classic and minimalist"),
            "{}",
            draft.body_text
        );
        let mut checking = request(EmailKind::CheckIn, "Ada");
        checking.last_fix_kept = Some((3, 5));
        assert!(
            TemplateWriter::compose(&checking)
                .body_text
                .contains("You kept 3 of the 5 pieces")
        );
        checking.last_fix_kept = Some((0, 5));
        assert!(
            TemplateWriter::compose(&checking)
                .body_text
                .contains("didn't quite hit the mark")
        );
    }

    #[test]
    fn a_redraft_reads_differently() {
        let first = request(EmailKind::WinBack, "Ada");
        let again = DraftRequest {
            variant: 1,
            ..first.clone()
        };
        assert_ne!(
            TemplateWriter::compose(&first).subject,
            TemplateWriter::compose(&again).subject
        );
    }

    #[test]
    fn wording_varies_between_clients() {
        let subjects: std::collections::HashSet<_> =
            ["Ada", "Grace", "Hedy", "Katherine", "Margaret", "Radia"]
                .iter()
                .map(|n| {
                    TemplateWriter::compose(&request(EmailKind::Welcome, n))
                        .subject
                        .replace(n, "")
                })
                .collect();
        assert!(
            subjects.len() > 1,
            "all six clients got the same subject line"
        );
    }
}
