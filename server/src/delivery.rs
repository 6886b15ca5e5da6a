//! Sending approved emails, and the signed unsubscribe link every email carries.
//!
//! The default delivery writes each email as an RFC 5322 `.eml` file into an outbox
//! directory (`data/outbox`), where a mail relay, a test or a person can pick it up. Each
//! email carries `List-Unsubscribe` (with one-click `List-Unsubscribe-Post`, RFC 8058) and
//! a footer link, both signed per client, so only the real recipient's link unsubscribes.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::PathBuf;
use store::Outgoing;

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
    /// Sends one email; `Err` says why it could not be sent.
    async fn deliver(&self, email: &Outgoing, unsubscribe_url: &str) -> Result<(), String>;
}

/// Writes each email as `<email id>.eml` into a directory. Writing the same email twice
/// replaces the file, so a retry never makes a duplicate.
pub struct Outbox {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl Delivery for Outbox {
    async fn deliver(&self, email: &Outgoing, unsubscribe_url: &str) -> Result<(), String> {
        let message = render_eml(email, unsubscribe_url, chrono::Utc::now());
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
    async fn deliver(&self, email: &Outgoing, unsubscribe_url: &str) -> Result<(), String> {
        use lettre::AsyncTransport;
        let address = |raw: &str| {
            raw.parse::<lettre::Address>()
                .map_err(|e| format!("the address {raw} cannot be sent to: {e}"))
        };
        let envelope = lettre::address::Envelope::new(
            Some(address(&email.stylist_email)?),
            vec![address(&email.client_email)?],
        )
        .map_err(|e| format!("no envelope: {e}"))?;
        let message = render_eml(email, unsubscribe_url, chrono::Utc::now());
        self.transport
            .send_raw(&envelope, message.as_bytes())
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused the email: {e}"))
    }
}

/// Header text with line breaks removed, so no value can add a header of its own.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A header word: plain when it is printable ASCII, otherwise RFC 2047 base64 UTF-8.
fn encoded_word(text: &str) -> String {
    let text = one_line(text);
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        text
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    }
}

/// `"Display Name" <address>` with the name quoted or encoded.
fn mailbox(name: &str, address: &str) -> String {
    let name = one_line(name);
    let shown = if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_word(&name)
    };
    format!("{shown} <{}>", one_line(address))
}

/// The email as an RFC 5322 message with a UTF-8 plain-text body.
pub fn render_eml(
    email: &Outgoing,
    unsubscribe_url: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let body = email
        .text
        .body_text
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    [
        format!(
            "From: {}",
            mailbox(&email.stylist_name, &email.stylist_email)
        ),
        format!("To: {}", mailbox(&email.client_name, &email.client_email)),
        format!("Subject: {}", encoded_word(&email.text.subject)),
        format!("Date: {}", now.to_rfc2822()),
        format!("Message-ID: <{}@engage>", one_line(email.id.as_str())),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        format!("List-Unsubscribe: <{}>", one_line(unsubscribe_url)),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_owned(),
        String::new(),
        body,
        String::new(),
        "-- ".to_owned(),
        format!(
            "You receive this because you agreed to hear from {}. To stop, open {}",
            one_line(&email.stylist_name),
            one_line(unsubscribe_url)
        ),
        String::new(),
    ]
    .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ClientId, DraftText, EmailId};

    fn outgoing(name: &str, subject: &str) -> Outgoing {
        Outgoing {
            id: EmailId::new("e-1"),
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
    fn an_eml_has_unsubscribe_headers_and_no_header_can_be_injected() {
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let eml = render_eml(
            &outgoing("Zoë \"Z\" Kim", "Hello\r\nBcc: everyone@example.com"),
            "https://e.example/unsubscribe?client=c-1&token=t",
            now,
        );
        let (head, body) = eml.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("List-Unsubscribe: <https://e.example/unsubscribe?client=c-1&token=t>")
        );
        assert!(head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(
            head.contains("To: =?utf-8?B?"),
            "non-ASCII names are encoded"
        );
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
        assert!(head.contains("Subject: HelloBcc: everyone@example.com"));
        assert!(body.starts_with("Hi Ada,\r\nnew pieces are in."));
        assert!(body.contains("To stop, open https://e.example/unsubscribe?client=c-1&token=t"));
        let plain = render_eml(&outgoing("Ada \"A\" Lovelace", "Hi"), "u", now);
        assert!(plain.contains("To: \"Ada \\\"A\\\" Lovelace\" <ada@example.com>"));
    }
}
