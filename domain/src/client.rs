//! A client of the styling business, and the parsing that keeps invalid client data out.
//!
//! Raw input ([`ClientInput`]) becomes a [`NewClient`] only through [`NewClient::parse`], which
//! reports every bad field at once. Past that boundary a name is never empty and an email
//! address is always well formed.

use crate::profile::{Profile, ProfileInput};
use crate::validation::{FieldError, ValidationErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable identifier of a client (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identifier of a stylist, the person who owns a book of clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct StylistId(String);

impl StylistId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stylist id as typed into a form: required, short, no spaces.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let id = raw.trim();
        if id.is_empty() {
            return Err(FieldError::new(
                "stylist_id",
                "Choose the stylist who looks after this client.",
            ));
        }
        if id.len() > 64 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new(
                "stylist_id",
                "This is not a known stylist.",
            ));
        }
        Ok(Self(id.to_owned()))
    }
}

/// A stylist as an operator adds one: an id (`st-maya`), a name and the address their
/// emails are sent from. Every bad field is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStylist {
    pub id: StylistId,
    pub name: ClientName,
    pub email: ClientEmail,
}

impl NewStylist {
    pub fn parse(id: &str, name: &str, email: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let id = errors.collect(StylistId::parse(id).map_err(|_| {
            FieldError::new(
                "id",
                "A stylist id is 1 to 64 characters without spaces, such as st-maya.",
            )
        }));
        // The client rules, in the stylist's words.
        let for_stylist =
            |e: FieldError| FieldError::new(e.field, e.message.replace("client's", "stylist's"));
        let name = errors.collect(ClientName::parse(name).map_err(for_stylist));
        let email = errors.collect(ClientEmail::parse(email).map_err(for_stylist));
        match (id, name, email) {
            (Some(id), Some(name), Some(email)) if errors.is_empty() => {
                Ok(Self { id, name, email })
            }
            _ => Err(errors),
        }
    }
}

impl fmt::Display for StylistId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "openapi")]
schema_as!(ClientName, String, "ClientName");
#[cfg(feature = "openapi")]
schema_as!(ClientEmail, String, "ClientEmail");

/// A client's full name as they like to be addressed: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientName(String);

impl ClientName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(FieldError::new("name", "Enter the client's name."));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "name",
                format!("Keep the name to {} characters or fewer.", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "The name contains characters that cannot be printed.",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first word of the name: how an email greets the client.
    pub fn first_name(&self) -> &str {
        self.0.split(' ').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for ClientName {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ClientName> for String {
    fn from(name: ClientName) -> Self {
        name.0
    }
}

/// A deliverable-looking email address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientEmail(String);

impl ClientEmail {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = |why: &str| FieldError::new("email", why.to_owned());
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("Enter the client's email address."));
        }
        if email.len() > Self::MAX_LEN {
            return Err(invalid("An email address is at most 254 characters long."));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid(
                "An email address needs an @, as in name@example.com.",
            ));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok {
            return Err(invalid(
                "The part before the @ is not a valid mailbox name.",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
            return Err(invalid(
                "The part after the @ is not a valid domain, as in example.com.",
            ));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientEmail {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ClientEmail> for String {
    fn from(email: ClientEmail) -> Self {
        email.0
    }
}

/// Where a client stands with the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Paused,
    Closed,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "closed" => Ok(Self::Closed),
            _ => Err(FieldError::new(
                "status",
                "Status must be active, paused or closed.",
            )),
        }
    }
}

/// Client fields exactly as a form or an API request sent them, before any checking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub name: String,
    pub email: String,
    pub stylist_id: String,
    /// `active` (the default), `paused` or `closed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Consent, style and history; a client who just signed up when left out.
    #[serde(default)]
    pub profile: ProfileInput,
}

/// A client that passed validation and is ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewClient {
    /// The id to keep the client under; `None` (every caller but the demo's replay, whose
    /// past must be the same on every run) for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ClientId>,
    pub name: ClientName,
    pub email: ClientEmail,
    pub stylist_id: StylistId,
    pub status: ClientStatus,
    pub profile: Profile,
}

impl NewClient {
    /// Checks every field as of `now` and reports all that are wrong, each by name.
    pub fn parse(input: &ClientInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.collect(ClientName::parse(&input.name));
        let email = errors.collect(ClientEmail::parse(&input.email));
        let stylist_id = errors.collect(StylistId::parse(&input.stylist_id));
        let status = match &input.status {
            Some(raw) => errors.collect(ClientStatus::parse(raw)),
            None => Some(ClientStatus::Active),
        };
        let profile = match Profile::parse(&input.profile, now) {
            Ok(profile) => Some(profile),
            Err(bad) => {
                errors.0.extend(bad.0);
                None
            }
        };
        match (name, email, stylist_id, status, profile) {
            (Some(name), Some(email), Some(stylist_id), Some(status), Some(profile))
                if errors.is_empty() =>
            {
                Ok(Self {
                    id: None,
                    name,
                    email,
                    stylist_id,
                    status,
                    profile,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A client as stored: the record every change, event and score refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Client {
    pub id: ClientId,
    pub name: ClientName,
    pub email: ClientEmail,
    pub stylist_id: StylistId,
    pub status: ClientStatus,
    /// Incremented by every write; an update must name the version it was based on.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Consent, style and history (nested, not flattened, so reading a record never
    /// buffers it first).
    pub profile: Profile,
}

/// The fields a stylist edits on the client form, as the form sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientEdit {
    pub name: String,
    pub email: String,
    pub stylist_id: String,
    pub status: String,
    /// The consent box: ticked records an opt-in now (if there was none); unticked
    /// withdraws an opt-in. Ticking it for a client who unsubscribed is refused
    /// (`email_opt_in`): only the client can undo their unsubscribe.
    pub email_opt_in: bool,
    pub styles: Vec<String>,
    pub sizes: crate::profile::Sizes,
    pub budget: String,
    pub style_notes: String,
}

impl ClientEdit {
    /// The form as it starts for `client`.
    pub fn of(client: &Client) -> Self {
        let style = client.profile.style();
        Self {
            name: client.name.as_str().to_owned(),
            email: client.email.as_str().to_owned(),
            stylist_id: client.stylist_id.as_str().to_owned(),
            status: client.status.as_str().to_owned(),
            email_opt_in: client.profile.consent().allows_email(),
            styles: style.styles.iter().map(|s| s.as_str().to_owned()).collect(),
            sizes: style.sizes.clone(),
            budget: style.budget.as_str().to_owned(),
            style_notes: style.notes.clone(),
        }
    }

    /// Applies the form to `client` as of `now`, or reports every bad field by name and
    /// leaves `client` untouched.
    pub fn apply(&self, client: &mut Client, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.collect(ClientName::parse(&self.name));
        let email = errors.collect(ClientEmail::parse(&self.email));
        let stylist_id = errors.collect(StylistId::parse(&self.stylist_id));
        let status = errors.collect(ClientStatus::parse(&self.status));
        let style = errors.collect_all(crate::profile::StyleProfile::parse(
            &self.styles,
            &self.sizes,
            Some(&self.budget),
            &self.style_notes,
        ));
        use crate::profile::EmailConsent;
        if self.email_opt_in
            && let Some(refused) = crate::consent::reopt_in_refused(client.profile.consent())
        {
            errors.0.push(refused);
        }
        let (Some(name), Some(email), Some(stylist_id), Some(status), Some(style)) =
            (name, email, stylist_id, status, style)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let consent = match (client.profile.consent(), self.email_opt_in) {
            (EmailConsent::OptedIn { at }, true) => EmailConsent::OptedIn { at },
            (_, true) => EmailConsent::OptedIn { at: now },
            (EmailConsent::OptedIn { .. }, false) => EmailConsent::NotGiven,
            (other, false) => other,
        };
        client.name = name;
        client.email = email;
        client.stylist_id = stylist_id;
        client.status = status;
        client.profile.set_style(style);
        client.profile.set_consent(consent);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_stylist_names_each_bad_field_in_the_stylists_words() {
        let maya = NewStylist::parse(" st-maya ", "  Maya   Okafor ", "Maya@Shop.Example").unwrap();
        assert_eq!(maya.id.as_str(), "st-maya");
        assert_eq!(maya.name.as_str(), "Maya Okafor");
        assert_eq!(maya.email.as_str(), "maya@shop.example");

        let errors = NewStylist::parse("st maya", "", "maya").unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "name", "email"]);
        assert_eq!(errors.0[1].message, "Enter the stylist's name.");
    }

    fn input(name: &str, email: &str, stylist: &str) -> ClientInput {
        ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: stylist.into(),
            status: None,
            profile: ProfileInput::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_valid_client_is_normalised() {
        let client = NewClient::parse(
            &input("  Ada   Lovelace ", " Ada@Example.COM ", "st-1"),
            now(),
        )
        .unwrap();
        assert_eq!(client.name.as_str(), "Ada Lovelace");
        assert_eq!(client.name.first_name(), "Ada");
        assert_eq!(client.email.as_str(), "ada@example.com");
        assert_eq!(client.stylist_id.as_str(), "st-1");
    }

    fn stored(consent_opt_in: bool) -> Client {
        let mut raw = input("Ada Lovelace", "ada@example.com", "st-1");
        raw.profile.email_opt_in = consent_opt_in;
        let new = NewClient::parse(&raw, now()).unwrap();
        Client {
            id: ClientId::new("c-1"),
            name: new.name,
            email: new.email,
            stylist_id: new.stylist_id,
            status: new.status,
            version: 1,
            created_at: now(),
            updated_at: now(),
            profile: new.profile,
        }
    }

    #[test]
    fn the_edit_form_round_trips_and_reports_every_bad_field_leaving_the_client_alone() {
        let client = stored(true);
        let mut edited = client.clone();
        ClientEdit::of(&client).apply(&mut edited, now()).unwrap();
        assert_eq!(edited, client, "an unchanged form changes nothing");

        let bad = ClientEdit {
            name: " ".into(),
            status: "sleeping".into(),
            styles: vec!["classic".into(), "goth".into()],
            budget: "lots".into(),
            ..ClientEdit::of(&client)
        };
        let errors = bad.apply(&mut edited, now()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "status", "styles[1]", "budget"]);
        assert_eq!(edited, client);
    }

    #[test]
    fn the_consent_box_opts_in_withdraws_and_keeps_the_original_opt_in_date() {
        let later = now() + chrono::Duration::days(3);
        let mut client = stored(false);
        let tick = ClientEdit {
            email_opt_in: true,
            ..ClientEdit::of(&client)
        };
        tick.apply(&mut client, now()).unwrap();
        assert_eq!(
            client.profile.consent(),
            crate::EmailConsent::OptedIn { at: now() }
        );
        tick.apply(&mut client, later).unwrap();
        assert_eq!(
            client.profile.consent(),
            crate::EmailConsent::OptedIn { at: now() },
            "saving again keeps when they agreed"
        );
        let untick = ClientEdit {
            email_opt_in: false,
            ..ClientEdit::of(&client)
        };
        untick.apply(&mut client, later).unwrap();
        assert_eq!(client.profile.consent(), crate::EmailConsent::NotGiven);
    }

    #[test]
    fn a_stylist_cannot_tick_the_consent_box_for_a_client_who_unsubscribed() {
        let mut client = stored(true);
        let at = now() - chrono::Duration::days(2);
        client
            .profile
            .set_consent(crate::EmailConsent::Unsubscribed { at });
        let before = client.clone();
        let tick = ClientEdit {
            email_opt_in: true,
            name: "Ada King".into(),
            ..ClientEdit::of(&client)
        };
        let errors = tick.apply(&mut client, now()).unwrap_err();
        assert!(errors.message_for("email_opt_in").is_some(), "{errors:?}");
        assert_eq!(client, before, "nothing of the edit is applied");
        let other_edit = ClientEdit {
            name: "Ada King".into(),
            ..ClientEdit::of(&client)
        };
        other_edit.apply(&mut client, now()).unwrap();
        assert_eq!(
            client.profile.consent(),
            crate::EmailConsent::Unsubscribed { at },
            "other edits keep the unsubscribe"
        );
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let errors = NewClient::parse(&input(" ", "not-an-email", ""), now()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "stylist_id"]);
        assert!(errors.message_for("email").unwrap().contains('@'));
    }

    #[test]
    fn profile_and_status_errors_are_reported_with_the_identity_errors() {
        let mut bad = input("", "ada@example.com", "st-1");
        bad.status = Some("sleeping".into());
        bad.profile.signed_up_on = Some("2030-01-01".into());
        let errors = NewClient::parse(&bad, now()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "status", "signed_up_on"]);
    }

    #[test]
    fn malformed_email_addresses_are_rejected() {
        for bad in [
            "a@b",
            "a@@b.com",
            "@b.com",
            "a@.com",
            "a@b.c",
            "a..b@c.com",
            "a b@c.com",
            "a@-b.com",
            "a@b.c0m",
        ] {
            assert!(ClientEmail::parse(bad).is_err(), "{bad} should be rejected");
        }
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "o'neil@example.ie",
        ] {
            assert!(
                ClientEmail::parse(good).is_ok(),
                "{good} should be accepted"
            );
        }
    }

    #[test]
    fn an_overlong_name_is_rejected() {
        let long = "x".repeat(ClientName::MAX_CHARS + 1);
        assert_eq!(ClientName::parse(&long).unwrap_err().field, "name");
        assert!(ClientName::parse(&"x".repeat(ClientName::MAX_CHARS)).is_ok());
    }

    #[test]
    fn deserialising_an_invalid_email_fails() {
        let result: Result<ClientEmail, _> = serde_json::from_str("\"nope\"");
        assert!(result.is_err());
    }
}
