//! People who sign in: stylists (their own book of clients), managers (every book) and
//! admins (accounts). A password is checked for strength here; hashing happens in the store.

use crate::client::{ClientEmail, StylistId};
use crate::validation::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a signed-in person may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and edits only the clients of their own stylist record.
    Stylist,
    /// Sees every stylist's clients and emails.
    Manager,
    /// A manager who also manages accounts.
    Admin,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Stylist, Self::Manager, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stylist => "stylist",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| FieldError::new("role", "Role must be stylist, manager or admin."))
    }
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: ClientEmail,
    pub role: Role,
    /// The stylist record a stylist account works as; `None` for managers and admins.
    pub stylist_id: Option<StylistId>,
}

impl User {
    /// Whether this person may see a client of `owner`: managers and admins see every
    /// book, a stylist only their own.
    pub fn may_see(&self, owner: &StylistId) -> bool {
        match self.role {
            Role::Manager | Role::Admin => true,
            Role::Stylist => self.stylist_id.as_ref() == Some(owner),
        }
    }
}

/// A password that is long enough to be worth hashing: 12 to 128 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let length = raw.chars().count();
        if length < Self::MIN_CHARS {
            return Err(FieldError::new(
                "password",
                format!("Use at least {} characters.", Self::MIN_CHARS),
            ));
        }
        if length > Self::MAX_CHARS {
            return Err(FieldError::new(
                "password",
                format!("Use at most {} characters.", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_name_the_field() {
        assert_eq!(Role::parse(" manager ").unwrap(), Role::Manager);
        assert_eq!(Role::parse("owner").unwrap_err().field, "role");
    }

    #[test]
    fn a_stylist_sees_only_their_own_book() {
        let maya = StylistId::new("st-maya");
        let jonas = StylistId::new("st-jonas");
        let stylist = User {
            id: "u-1".into(),
            email: ClientEmail::parse("maya@engage.example").unwrap(),
            role: Role::Stylist,
            stylist_id: Some(maya.clone()),
        };
        assert!(stylist.may_see(&maya));
        assert!(!stylist.may_see(&jonas));
        let manager = User {
            role: Role::Manager,
            stylist_id: None,
            ..stylist
        };
        assert!(manager.may_see(&jonas));
    }

    #[test]
    fn passwords_have_a_length_range_and_never_print() {
        assert_eq!(Password::parse("short").unwrap_err().field, "password");
        assert!(Password::parse(&"x".repeat(129)).is_err());
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}

/// A key a program uses to call the REST API, acting with a role (and, for a stylist key,
/// on one stylist's book). Only its hash is stored; the secret is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// The key's public id (the secret starts `ek_{id}_`).
    pub id: String,
    /// What the key is for ("order-system import").
    pub name: String,
    pub role: Role,
    /// For a stylist key: the book it may reach.
    pub stylist_id: Option<StylistId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked; a revoked key signs nothing in.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApiKey {
    pub const MAX_NAME_CHARS: usize = 100;

    /// The key's name, trimmed: 1 to 100 characters. Errors name the field `name`.
    pub fn parse_name(raw: &str) -> Result<String, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new(
                "name",
                "Name the key after what will use it.",
            ));
        }
        if name.chars().count() > Self::MAX_NAME_CHARS {
            return Err(FieldError::new(
                "name",
                format!("Use at most {} characters.", Self::MAX_NAME_CHARS),
            ));
        }
        Ok(name.to_owned())
    }

    /// The user a request signed with this key acts as. Its address is a placeholder that
    /// names the key (`apikey-{id}@keys.engage.invalid`), so audit trails show which key
    /// acted.
    pub fn acting_user(&self) -> User {
        User {
            id: format!("apikey:{}", self.id),
            email: ClientEmail::parse(&format!("apikey-{}@keys.engage.invalid", self.id))
                .expect("a key id is hex, so the placeholder address is valid"),
            role: self.role,
            stylist_id: self.stylist_id.clone(),
        }
    }
}

/// A key just created: its record and the secret, which is never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewApiKey {
    pub key: ApiKey,
    /// Send as `Authorization: Bearer {secret}`. Shown once.
    pub secret: String,
}

/// Splits a presented secret `ek_{id}_{random}` into its id, if it has that shape.
pub fn api_key_id(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("ek_")?;
    let (id, random) = rest.split_once('_')?;
    (id.len() == 16
        && random.len() == 64
        && id
            .bytes()
            .chain(random.bytes())
            .all(|b| b.is_ascii_hexdigit()))
    .then_some(id)
}
