//! Account rules every backend shares: passwords kept as argon2id hashes (checked in
//! constant time whether or not the account exists), random session tokens and API-key
//! secrets of which only the SHA-256 is stored, and who may hold which role.

use crate::{Result, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use domain::user::{Password, Role};
use domain::{StylistId, ValidationErrors};
use sha2::{Digest, Sha256};

/// Why an account could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The argon2id hash of a password, as stored (PHC string).
pub fn hash_password(password: &Password) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    #[cfg(test)]
    ARGON2_RUNS.with(|count| count.set(count.get() + 1));
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Corrupt(format!("hashing a password: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is stored of a session token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new random session token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut bytes,
    );
    hex(&bytes)
}

/// The hash checked when no account has the address: made once per process, so a sign-in
/// for an unknown address costs one argon2 run, as one for a known address does.
static PLACEHOLDER_HASH: std::sync::LazyLock<Result<String>> = std::sync::LazyLock::new(|| {
    hash_password(
        &Password::parse("unknown-account-placeholder")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    )
});

#[cfg(test)]
thread_local! {
    /// Argon2 runs (hashes and verifications) on this thread, for the tests of their cost.
    static ARGON2_RUNS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether `password` matches the stored `hash`; with no account (`None`) a throw-away
/// hash is checked instead, so the answer takes as long either way: one argon2 run each.
/// Blocking: call it on the blocking pool.
pub fn password_matches(hash: Option<&str>, password: &str) -> Result<bool> {
    let hash = match hash {
        Some(hash) => hash,
        None => PLACEHOLDER_HASH
            .as_deref()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    };
    let parsed =
        PasswordHash::new(hash).map_err(|e| StoreError::Corrupt(format!("password hash: {e}")))?;
    #[cfg(test)]
    ARGON2_RUNS.with(|count| count.set(count.get() + 1));
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Checks who may hold an account: a stylist names a stylist record, others none.
pub fn check_account_role(role: Role, stylist: Option<&StylistId>) -> Result<(), ValidationErrors> {
    match (role, stylist) {
        (Role::Stylist, None) => Err(ValidationErrors::single(
            "stylist_id",
            "A stylist account names the stylist it works as.",
        )),
        (Role::Manager | Role::Admin, Some(_)) => Err(ValidationErrors::single(
            "stylist_id",
            "Only stylist accounts name a stylist.",
        )),
        _ => Ok(()),
    }
}

/// A new key's id and secret (`ek_{id}_{64 hex}`) and the hash stored for it.
pub fn new_api_key_secret() -> (String, String, String) {
    let id = new_token()[..16].to_owned();
    let secret = format!("ek_{id}_{}", new_token());
    let hash = token_hash(&secret);
    (id, secret, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs() -> u32 {
        ARGON2_RUNS.with(std::cell::Cell::get)
    }

    #[test]
    fn an_unknown_account_costs_one_argon2_run_as_a_known_one_does() {
        let hash = hash_password(&Password::parse("correct horse battery").unwrap()).unwrap();
        // The placeholder is made once per process (perhaps on another test's thread).
        assert!(!password_matches(None, "anything").unwrap());

        let before = runs();
        assert!(password_matches(Some(&hash), "correct horse battery").unwrap());
        assert_eq!(runs() - before, 1, "a known account: one verification");

        let before = runs();
        assert!(!password_matches(None, "correct horse battery").unwrap());
        assert!(!password_matches(None, "another guess").unwrap());
        assert_eq!(
            runs() - before,
            2,
            "an unknown account: one verification each, no hashing"
        );
    }
}
