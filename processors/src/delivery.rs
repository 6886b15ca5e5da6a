//! Delivering approved emails, and the signed unsubscribe link every email carries.
//!
//! Each email is built with lettre's `Message` builder (RFC 2047 words for non-ASCII
//! names and subjects, a transfer encoding that keeps lines short) with a `Message-ID`
//! that is the same every time the same email is built (`<email id>@<the app's domain>`),
//! so a retry after a crash is recognisable as the same message. It carries
//! `List-Unsubscribe` (with one-click `List-Unsubscribe-Post`, RFC 8058) and a footer link,
//! both signed per client, so only the real recipient's link unsubscribes.
//!
//! The default delivery writes each email as an `.eml` file into an outbox directory
//! (`data/outbox`), where a mail relay, a test or a person can pick it up; `Smtp` sends it.

use crate::tracking::Tracking;
use base64::Engine;
use hmac::{Hmac, Mac};
use ports::Outgoing;
use sha2::Sha256;
use std::path::PathBuf;

/// Signs and checks unsubscribe links.
#[derive(Clone)]
pub struct UnsubscribeLinks {
    key: Vec<u8>,
    /// Where the app is reached from outside, e.g. `https://engage.example.com`.
    public_url: String,
}

impl UnsubscribeLinks {
    pub fn new(key: impl Into<Vec<u8>>, public_url: &str) -> Self {
        Self {
            key: key.into(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, client_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(b"unsubscribe:");
        mac.update(client_id.as_bytes());
        mac
    }

    /// Where the app is reached from outside.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The token for `client_id`'s link.
    pub fn token(&self, client_id: &str) -> String {
        let bytes = self.mac(client_id).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `token` is the one this server made for `client_id` (constant time).
    pub fn verify(&self, client_id: &str, token: &str) -> bool {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|bytes| self.mac(client_id).verify_slice(&bytes).is_ok())
    }

    pub fn url(&self, client_id: &str) -> String {
        format!(
            "{}/unsubscribe?client={}&token={}",
            self.public_url,
            client_id,
            self.token(client_id)
        )
    }
}

/// Where approved emails go.
#[async_trait::async_trait]
pub trait Delivery: Send + Sync + 'static {
    /// Sends one built message; `Err` says why it could not be sent.
    async fn deliver(&self, email: &Outgoing, message: &lettre::Message) -> Result<(), String>;
}

/// Writes each email as `<email id>.eml` into a directory. Writing the same email twice
/// replaces the file, so a retry never makes a duplicate.
pub struct Outbox {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl Delivery for Outbox {
    async fn deliver(&self, email: &Outgoing, message: &lettre::Message) -> Result<(), String> {
        let message = message.formatted();
        let dir = self.dir.clone();
        let name = format!("{}.eml", email.id);
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the outbox {}: {e}", dir.display()))?;
            // Write beside, then rename: a reader never sees half an email.
            let partial = dir.join(format!(".{name}.partial"));
            std::fs::write(&partial, message)
                .and_then(|()| std::fs::rename(&partial, dir.join(&name)))
                .map_err(|e| format!("cannot write to the outbox {}: {e}", dir.display()))
        })
        .await
        .map_err(|e| format!("delivery task failed: {e}"))?
    }
}

/// Sends each email to an SMTP server (the address in `ENGAGE_SMTP_URL`).
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
}

impl Smtp {
    /// A sender for `url`; an unusable address is refused with the reason (without the
    /// address, which may hold a password).
    pub fn new(url: &str) -> Result<Self, String> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| format!("ENGAGE_SMTP_URL is not a usable SMTP address: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { transport })
    }
}

#[async_trait::async_trait]
impl Delivery for Smtp {
    async fn deliver(&self, _email: &Outgoing, message: &lettre::Message) -> Result<(), String> {
        use lettre::AsyncTransport;
        self.transport
            .send(message.clone())
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused the email: {e}"))
    }
}

/// Header text with control characters removed, so no value can add a header of its own.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// The domain of `public_url` (`https://engage.example.com/x` -> `engage.example.com`), for
/// `Message-ID`s; `engage.invalid` when it has none.
pub fn message_domain(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        "engage.invalid".to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The stable `Message-ID` of `email`.
pub fn message_id(email: &Outgoing, domain: &str) -> String {
    let id: String = email
        .id
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("<{id}@{domain}>")
}

/// The email as an RFC 5322 message with a UTF-8 plain-text body.
pub fn build_message(
    email: &Outgoing,
    unsubscribe_url: &str,
    domain: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<lettre::Message, String> {
    build_tracked_message(email, unsubscribe_url, domain, now, &Tracking::default())
}

/// [`build_message`] with the business's own links tracked, and with the open pixel an
/// HTML part beside the text (the same words, escaped, links as links).
pub fn build_tracked_message(
    email: &Outgoing,
    unsubscribe_url: &str,
    domain: &str,
    now: chrono::DateTime<chrono::Utc>,
    tracking: &Tracking,
) -> Result<lettre::Message, String> {
    use lettre::message::Mailbox;
    use lettre::message::header::{HeaderName, HeaderValue};
    let mailbox = |name: &str, address: &str, who: &str| {
        address
            .parse::<lettre::Address>()
            .map(|address| Mailbox::new(Some(one_line(name)), address))
            .map_err(|e| format!("the {who} address {address} cannot be sent to: {e}"))
    };
    let unsubscribe_url = one_line(unsubscribe_url);
    let words = tracking.track(&email.id, &email.text.body_text.replace("\r\n", "\n"));
    let body = format!(
        "{}\n\n-- \nYou receive this because you agreed to hear from {}. To stop, open {}\n",
        words,
        one_line(&email.stylist_name),
        unsubscribe_url
    );
    lettre::Message::builder()
        .from(mailbox(
            &email.stylist_name,
            &email.stylist_email,
            "stylist's",
        )?)
        .to(mailbox(
            &email.client_name,
            &email.client_email,
            "client's",
        )?)
        .subject(one_line(&email.text.subject))
        .date(now.into())
        .message_id(Some(message_id(email, domain)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{unsubscribe_url}>"),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ))
        .multipart_or_single(
            body,
            tracking.open_pixel().then(|| {
                html_body(
                    &words,
                    &email.stylist_name,
                    &unsubscribe_url,
                    &tracking.open_url(&email.id),
                )
            }),
        )
        .map_err(|e| format!("the email cannot be built: {e}"))
}

/// The HTML twin of a text body: paragraphs, each link a link, the footer, the pixel.
fn html_body(words: &str, stylist: &str, unsubscribe_url: &str, pixel: &str) -> String {
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    let linked = |text: &str| {
        let mut out = String::new();
        let mut last = 0;
        for (range, link) in crate::tracking::links_in(text) {
            out.push_str(&escape(&text[last..range.start]));
            out.push_str(&format!("<a href=\"{0}\">{0}</a>", escape(link)));
            last = range.end;
        }
        out.push_str(&escape(&text[last..]));
        out
    };
    let paragraphs: String = words
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", linked(p).replace('\n', "<br>")))
        .collect();
    format!(
        "<!DOCTYPE html><html><body>{paragraphs}<p style=\"color:#666;font-size:12px\">You receive this because you agreed to hear from {}. <a href=\"{}\">Unsubscribe</a></p><img src=\"{}\" width=\"1\" height=\"1\" alt=\"\"></body></html>",
        escape(&one_line(stylist)),
        escape(unsubscribe_url),
        escape(pixel)
    )
}

/// A message body: the text alone, or the text and its HTML twin.
trait Body {
    fn multipart_or_single(
        self,
        text: String,
        html: Option<String>,
    ) -> Result<lettre::Message, lettre::error::Error>;
}

impl Body for lettre::message::MessageBuilder {
    fn multipart_or_single(
        self,
        text: String,
        html: Option<String>,
    ) -> Result<lettre::Message, lettre::error::Error> {
        use lettre::message::header::ContentType;
        use lettre::message::{MultiPart, SinglePart};
        let text_part = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text);
        match html {
            None => self.singlepart(text_part),
            Some(html) => self.multipart(
                MultiPart::alternative().singlepart(text_part).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ClientId, DraftText, EmailId};

    fn outgoing(name: &str, subject: &str) -> Outgoing {
        Outgoing {
            id: EmailId::new("0192e4f0-aaaa-7bbb-8ccc-000000000001"),
            client_id: ClientId::new("c-1"),
            client_name: name.into(),
            client_email: "ada@example.com".into(),
            stylist_name: "Maya Okafor".into(),
            stylist_email: "maya@engage.example".into(),
            text: DraftText {
                subject: subject.into(),
                body_text: "Hi Ada,\nnew pieces are in.".into(),
            },
        }
    }

    fn formatted(email: &Outgoing) -> String {
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let message = build_message(
            email,
            "https://e.example/unsubscribe?client=c-1&token=t",
            "e.example",
            now,
        )
        .unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn links_verify_only_for_their_client_and_key() {
        let links = UnsubscribeLinks::new(b"key-one".to_vec(), "https://engage.example/");
        let token = links.token("c-1");
        assert!(links.verify("c-1", &token));
        assert!(!links.verify("c-2", &token));
        assert!(!links.verify("c-1", "not-a-token"));
        assert!(!UnsubscribeLinks::new(b"key-two".to_vec(), "x").verify("c-1", &token));
        assert_eq!(
            links.url("c-1"),
            format!("https://engage.example/unsubscribe?client=c-1&token={token}")
        );
    }

    #[test]
    fn a_message_has_unsubscribe_headers_a_stable_id_and_no_header_can_be_injected() {
        let email = outgoing("Zoë \"Z\" Kim", "Hello\r\nBcc: everyone@example.com");
        let eml = formatted(&email);
        let (head, body) = eml.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("List-Unsubscribe: <https://e.example/unsubscribe?client=c-1&token=t>"),
            "{head}"
        );
        assert!(head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(
            head.contains("=?utf-8?"),
            "non-ASCII names are encoded: {head}"
        );
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
        assert!(
            head.contains("Message-ID: <0192e4f0-aaaa-7bbb-8ccc-000000000001@e.example>"),
            "{head}"
        );
        assert!(body.contains("new pieces are in."), "{body}");
        // The body is quoted-printable: `=` is written `=3D`.
        assert!(
            body.contains("unsubscribe?client=3Dc-1&token=3Dt"),
            "{body}"
        );
        assert_eq!(
            eml,
            formatted(&email),
            "the same email builds the same message"
        );
    }

    #[test]
    fn long_lines_and_non_ascii_text_are_encoded_to_short_lines() {
        let mut email = outgoing(
            "Ada",
            "Ünïcödé subject that is rather long to see it folded properly",
        );
        email.text.body_text = "ß".repeat(400) + &" word".repeat(200);
        let eml = formatted(&email);
        assert!(
            eml.split("\r\n").all(|line| line.len() <= 998),
            "RFC 5322 line limit"
        );
        assert!(eml.contains("Subject: =?utf-8?"), "{eml}");
    }

    #[test]
    fn the_message_domain_is_the_public_hosts() {
        assert_eq!(
            message_domain("https://Engage.Example.com/app"),
            "engage.example.com"
        );
        assert_eq!(message_domain("http://127.0.0.1:3000"), "127.0.0.1");
        assert_eq!(
            message_domain("http://user:pw@shop.example:8080/x"),
            "shop.example"
        );
        assert_eq!(message_domain(""), "engage.invalid");
        assert_eq!(message_domain("https://exa mple/"), "engage.invalid");
    }

    #[test]
    fn an_address_that_cannot_be_sent_to_is_an_error_not_a_panic() {
        let mut email = outgoing("Ada", "Hi");
        email.client_email = "not an address".into();
        let now = chrono::Utc::now();
        let error = build_message(&email, "u", "e.example", now).unwrap_err();
        assert!(error.contains("client's address"), "{error}");
    }
}
