//! Tracked links and the open pixel. An email may carry links to the business's own pages
//! (an allow-list of hosts, `ENGAGE_LINK_HOSTS`: "book my next Fix"); when it is sent, each
//! such link becomes `{public url}/t/{email}.{n}.{signature}`, signed per email and link.
//! Following it records the click on the client (as any change, so the score's email
//! engagement moves through the pipeline) and redirects to the link as the email holds it:
//! the address comes from the stored email and its host must still be allowed, so the
//! route can never send a visitor anywhere else. With `ENGAGE_OPEN_PIXEL`, an HTML part
//! carries a one-pixel image at `/o/{email}.{signature}.gif` that records an open.

use base64::Engine;
use domain::EmailId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::ops::Range;

/// The links in `text` (`http://` or `https://` up to the next space, without the
/// punctuation a sentence puts after them), in order, with where each stands.
pub fn links_in(text: &str) -> Vec<(Range<usize>, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find_scheme(&text[from..]).map(|i| from + i) {
        let end = text[at..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| at + i);
        let link = text[at..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
        if link.len() > "https://".len() {
            found.push((at..at + link.len(), link));
        }
        from = end.max(at + 1);
    }
    found
}

fn find_scheme(text: &str) -> Option<usize> {
    match (text.find("https://"), text.find("http://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The host of a plain ASCII `http(s)://host[/…]` link, lower-cased; `None` for anything
/// else (user info, odd characters, no host).
pub fn host_of(link: &str) -> Option<String> {
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))?;
    if !rest.is_ascii() || rest.chars().any(|c| c.is_ascii_control() || c == '\\') {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() || host.contains('@') {
        return None;
    }
    let host = host.split(':').next()?.to_ascii_lowercase();
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        .then_some(host)
}

/// The hosts whose links an email may carry, and how they are tracked.
#[derive(Clone, Default)]
pub struct Tracking {
    key: Vec<u8>,
    public_url: String,
    hosts: Vec<String>,
    open_pixel: bool,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("hosts", &self.hosts)
            .field("open_pixel", &self.open_pixel)
            .finish_non_exhaustive()
    }
}

impl Tracking {
    pub fn new(
        key: impl Into<Vec<u8>>,
        public_url: &str,
        hosts: Vec<String>,
        open_pixel: bool,
    ) -> Self {
        Self {
            key: key.into(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            hosts: hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            open_pixel,
        }
    }

    /// The hosts from `ENGAGE_LINK_HOSTS` (comma-separated) and the pixel from
    /// `ENGAGE_OPEN_PIXEL` (`true`/`false`), as `get` finds them; a bad value names its
    /// variable.
    pub fn settings_from(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(Vec<String>, bool), String> {
        let hosts: Vec<String> = get("ENGAGE_LINK_HOSTS")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        for host in &hosts {
            if host_of(&format!("https://{host}")).as_deref() != Some(host.as_str()) {
                return Err(format!(
                    "ENGAGE_LINK_HOSTS: {host:?} is not a host name (shop.example, book.shop.example)"
                ));
            }
        }
        let open_pixel = match get("ENGAGE_OPEN_PIXEL").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!("ENGAGE_OPEN_PIXEL is true or false, not {other:?}"));
            }
        };
        Ok((hosts, open_pixel))
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn open_pixel(&self) -> bool {
        self.open_pixel
    }

    /// Whether `link` goes to one of the business's own hosts.
    pub fn allows(&self, link: &str) -> bool {
        host_of(link).is_some_and(|host| self.hosts.contains(&host))
    }

    /// The allowed links of `text`, in order: link `n` of an email is the `n`th of these.
    pub fn tracked_links<'a>(&self, text: &'a str) -> Vec<&'a str> {
        links_in(text)
            .into_iter()
            .map(|(_, link)| link)
            .filter(|link| self.allows(link))
            .collect()
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn sign(&self, parts: &[&[u8]]) -> String {
        let bytes = self.mac(parts).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..16])
    }

    fn verify(&self, parts: &[&[u8]], signature: &str) -> bool {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|bytes| {
                self.mac(parts).verify_truncated_left(&bytes).is_ok() && bytes.len() == 16
            })
    }

    /// Where link `n` (`link`) of `email` is followed through.
    pub fn click_url(&self, email: &EmailId, n: usize, link: &str) -> String {
        let n = n.to_string();
        let signature = self.sign(&[
            b"click",
            email.as_str().as_bytes(),
            n.as_bytes(),
            link.as_bytes(),
        ]);
        format!("{}/t/{}.{n}.{signature}", self.public_url, email)
    }

    /// Whether `signature` is this server's for link `n` (`link`) of `email`.
    pub fn verify_click(&self, email: &EmailId, n: usize, link: &str, signature: &str) -> bool {
        let n = n.to_string();
        self.verify(
            &[
                b"click",
                email.as_str().as_bytes(),
                n.as_bytes(),
                link.as_bytes(),
            ],
            signature,
        )
    }

    /// The open pixel's address for `email`.
    pub fn open_url(&self, email: &EmailId) -> String {
        let signature = self.sign(&[b"open", email.as_str().as_bytes()]);
        format!("{}/o/{}.{signature}.gif", self.public_url, email)
    }

    pub fn verify_open(&self, email: &EmailId, signature: &str) -> bool {
        self.verify(&[b"open", email.as_str().as_bytes()], signature)
    }

    /// `text` with each allowed link replaced by its tracked address.
    pub fn track(&self, email: &EmailId, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut n = 0;
        for (range, link) in links_in(text) {
            if !self.allows(link) {
                continue;
            }
            out.push_str(&text[last..range.start]);
            out.push_str(&self.click_url(email, n, link));
            last = range.end;
            n += 1;
        }
        out.push_str(&text[last..]);
        out
    }
}

/// `{email}.{n}.{signature}`: a click token's parts.
pub fn parse_click(token: &str) -> Option<(EmailId, usize, String)> {
    let mut parts = token.rsplitn(3, '.');
    let signature = parts.next()?.to_owned();
    let n = parts.next()?.parse().ok()?;
    let email = parts.next()?;
    (!email.is_empty()).then(|| (EmailId::new(email), n, signature))
}

/// `{email}.{signature}.gif`: an open token's parts.
pub fn parse_open(token: &str) -> Option<(EmailId, String)> {
    let token = token.strip_suffix(".gif")?;
    let (email, signature) = token.rsplit_once('.')?;
    (!email.is_empty()).then(|| (EmailId::new(email), signature.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking() -> Tracking {
        Tracking::new(
            b"key".to_vec(),
            "https://engage.example/",
            vec!["shop.example".into()],
            true,
        )
    }

    #[test]
    fn only_the_businesss_own_links_are_tracked_each_signed_for_its_email_and_place() {
        let email = EmailId::new("em-1");
        let text = "Book here: https://shop.example/book?fix=1. Or see https://elsewhere.example/x, or https://shop.example/style.";
        let tracked = tracking().track(&email, text);
        assert!(tracked.contains("https://elsewhere.example/x"), "{tracked}");
        assert!(!tracked.contains("https://shop.example/"), "{tracked}");
        let links: Vec<_> = links_in(&tracked)
            .into_iter()
            .map(|(_, l)| l.to_owned())
            .collect();
        assert!(links[0].starts_with("https://engage.example/t/em-1.0."));
        assert!(links[2].starts_with("https://engage.example/t/em-1.1."));
        let (id, n, signature) = parse_click(links[0].rsplit('/').next().unwrap()).unwrap();
        assert_eq!((id.as_str(), n), ("em-1", 0));
        let t = tracking();
        assert!(t.verify_click(&id, 0, "https://shop.example/book?fix=1", &signature));
        assert!(!t.verify_click(&id, 1, "https://shop.example/book?fix=1", &signature));
        assert!(!t.verify_click(
            &EmailId::new("em-2"),
            0,
            "https://shop.example/book?fix=1",
            &signature
        ));
        assert!(!t.verify_click(&id, 0, "https://evil.example/", &signature));
        assert!(
            !Tracking::new(b"other".to_vec(), "x", vec![], false).verify_click(
                &id,
                0,
                "https://shop.example/book?fix=1",
                &signature
            )
        );
    }

    #[test]
    fn hosts_are_plain_names_and_lookalikes_are_not_allowed() {
        let t = tracking();
        assert!(t.allows("https://SHOP.example/x"));
        assert!(!t.allows("https://shop.example.evil.com/x"));
        assert!(!t.allows("https://user@shop.example/x"));
        assert!(!t.allows("https://shop\u{0430}.example/x"));
        assert!(!t.allows("javascript:alert(1)"));
        let (hosts, pixel) = Tracking::settings_from(|name| {
            (name == "ENGAGE_LINK_HOSTS").then(|| "Shop.example, book.shop.example".into())
        })
        .unwrap();
        assert_eq!(hosts, ["shop.example", "book.shop.example"]);
        assert!(!pixel);
        let bad_pixel =
            Tracking::settings_from(|name| (name == "ENGAGE_OPEN_PIXEL").then(|| "yes".into()));
        assert!(bad_pixel.unwrap_err().contains("ENGAGE_OPEN_PIXEL"));
        let bad = Tracking::settings_from(|name| {
            (name == "ENGAGE_LINK_HOSTS").then(|| "https://x".into())
        });
        assert!(bad.unwrap_err().contains("ENGAGE_LINK_HOSTS"));
    }

    #[test]
    fn an_open_token_verifies_only_for_its_email() {
        let t = tracking();
        let url = t.open_url(&EmailId::new("em-9"));
        let (email, signature) = parse_open(url.rsplit('/').next().unwrap()).unwrap();
        assert_eq!(email.as_str(), "em-9");
        assert!(t.verify_open(&email, &signature));
        assert!(!t.verify_open(&EmailId::new("em-8"), &signature));
    }
}
