//! Accounts and sign-in sessions. Passwords are kept as argon2id hashes (hashed and
//! checked on the blocking pool, never on the writer); session tokens are random and only
//! their SHA-256 is stored, so a copy of the database signs nobody in.

use crate::db::millis;
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use domain::user::{ApiKey, NewApiKey, Password, Role, User, api_key_id};
use domain::{ClientEmail, StylistId, ValidationErrors};
use ports::{
    AddUserError, check_account_role, hash_password, new_api_key_secret, new_token,
    password_matches, token_hash,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<Result<User>> {
    let (id, email, role, stylist): (String, String, String, Option<String>) =
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    Ok((|| {
        Ok(User {
            id,
            email: ClientEmail::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            stylist_id: stylist.map(StylistId::new),
        })
    })())
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<Result<ApiKey>> {
    let (id, name, role, stylist, created, revoked): (
        String,
        String,
        String,
        Option<String>,
        i64,
        Option<i64>,
    ) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    );
    Ok((|| {
        Ok(ApiKey {
            id,
            name,
            role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            stylist_id: stylist.map(StylistId::new),
            created_at: crate::db::instant(created)?,
            revoked_at: revoked.map(crate::db::instant).transpose()?,
        })
    })())
}

const API_KEY_COLUMNS: &str = "id, name, role, stylist_id, created_at, revoked_at";

impl Store {
    /// Creates an API key acting with `role` (a stylist key names its stylist). Returns
    /// the record and the secret; only the secret's hash is kept.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        stylist: Option<StylistId>,
        now: DateTime<Utc>,
    ) -> Result<NewApiKey, AddUserError> {
        let name = ApiKey::parse_name(name).map_err(|e| ValidationErrors(vec![e]))?;
        check_account_role(role, stylist.as_ref())?;
        let (id, secret, hash) = new_api_key_secret();
        let key = ApiKey {
            id,
            name,
            role,
            stylist_id: stylist,
            created_at: crate::db::instant(millis(now))?,
            revoked_at: None,
        };
        let stored = key.clone();
        self.write(move |conn: &Connection| {
            if let Some(stylist) = &stored.stylist_id {
                crate::clients::refuse_unknown_stylist(conn, stylist).map_err(db_error)??;
            }
            conn.prepare_cached(
                "INSERT INTO api_keys (id, name, secret_hash, role, stylist_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            ).map_err(db_error)?
            .execute(params![
                stored.id,
                stored.name,
                hash,
                stored.role.as_str(),
                stored.stylist_id.as_ref().map(|s| s.as_str()),
                millis(now)
            ]).map_err(db_error)?;
            Ok::<_, AddUserError>(())
        })
        .await?;
        Ok(NewApiKey { key, secret })
    }

    /// The live (unrevoked) key a presented secret belongs to. A key found in the last
    /// [`RecentCache::FRESH_FOR`](crate::RecentCache::FRESH_FOR) is answered from memory: revoking it through this store
    /// takes effect at once, revoking it from another process within that time.
    pub async fn api_key(&self, secret: String) -> Result<Option<ApiKey>> {
        if api_key_id(&secret).is_none() {
            return Ok(None);
        }
        let hash = token_hash(&secret);
        if let Some(key) = self.inner.api_keys.get(&hash) {
            return Ok(Some(key));
        }
        let lookup = hash.clone();
        let found = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL"
                )).map_err(db_error)?
                .query_row([lookup], api_key_from_row)
                .optional().map_err(db_error)?
                .transpose()
            })
            .await?;
        if let Some(key) = &found {
            self.inner.api_keys.put(hash, key.clone());
        }
        Ok(found)
    }

    /// Every key, newest first (revoked ones too, with when).
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
            ))
            .map_err(db_error)?
            .query_map([], api_key_from_row)
            .map_err(db_error)?
            .map(|row| row.map_err(db_error)?)
            .collect()
        })
        .await
    }

    /// Revokes a key; `None` if there is no such key. Revoking twice keeps the first time.
    pub async fn revoke_api_key(&self, id: String, now: DateTime<Utc>) -> Result<Option<ApiKey>> {
        // Forgotten before (no request after this call is answered from memory) and after
        // (a lookup that read the key just before the revocation committed may have cached it).
        self.inner.api_keys.remove_where(|key| key.id == id);
        let forget = id.clone();
        let revoked = self
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                )
                .map_err(db_error)?
                .execute(params![id, millis(now)])
                .map_err(db_error)?;
                conn.prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"
                ))
                .map_err(db_error)?
                .query_row([id], api_key_from_row)
                .optional()
                .map_err(db_error)?
                .transpose()
            })
            .await;
        self.inner.api_keys.remove_where(|key| key.id == forget);
        revoked
    }

    /// Adds an account. A stylist account must name an existing stylist record; managers
    /// and admins name none. Email addresses are unique.
    pub async fn add_user(
        &self,
        email: ClientEmail,
        role: Role,
        stylist: Option<StylistId>,
        password: Password,
        now: DateTime<Utc>,
    ) -> Result<User, AddUserError> {
        check_account_role(role, stylist.as_ref())?;
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| StoreError::Cancelled)??;
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            role,
            stylist_id: stylist,
        };
        let stored = user.clone();
        self.write(move |conn: &Connection| {
            if let Some(stylist) = &stored.stylist_id {
                crate::clients::refuse_unknown_stylist(conn, stylist).map_err(db_error)??;
            }
            let taken = conn.prepare_cached("SELECT 1 FROM users WHERE email = ?1").map_err(db_error)?.exists([stored.email.as_str()]).map_err(db_error)?;
            if taken {
                return Err(ValidationErrors::single("email", "An account with this email address already exists.").into());
            }
            conn.prepare_cached(
                "INSERT INTO users (id, email, role, stylist_id, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            ).map_err(db_error)?
            .execute(params![
                stored.id,
                stored.email.as_str(),
                stored.role.as_str(),
                stored.stylist_id.as_ref().map(|s| s.as_str()),
                hash,
                millis(now)
            ]).map_err(db_error)?;
            Ok::<_, AddUserError>(())
        })
        .await?;
        Ok(user)
    }

    pub async fn user_count(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
                .map_err(db_error)
        })
        .await
    }

    /// The account with this email and password, if they match. Takes as long for an
    /// unknown address as for a wrong password, so the answer time tells nothing.
    pub async fn authenticate(&self, email: String, password: String) -> Result<Option<User>> {
        let email = email.trim().to_lowercase();
        let found = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, email, role, stylist_id, password_hash FROM users WHERE email = ?1",
                )
                .map_err(db_error)?
                .query_row([email], |row| {
                    Ok((user_from_row(row)?, row.get::<_, String>(4)?))
                })
                .optional()
                .map_err(db_error)?
                .map(|(user, hash)| user.map(|u| (u, hash)))
                .transpose()
            })
            .await?;
        tokio::task::spawn_blocking(move || {
            let (user, hash) = match found {
                Some((user, hash)) => (Some(user), Some(hash)),
                None => (None, None),
            };
            let matches = password_matches(hash.as_deref(), &password)?;
            Ok(user.filter(|_| matches))
        })
        .await
        .map_err(|_| StoreError::Cancelled)?
    }

    /// Starts a session for `user` lasting `ttl`; returns the token for the cookie.
    pub async fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String> {
        let token = new_token();
        let (hash, user_id) = (token_hash(&token), user.id.clone());
        self.write(move |conn| {
            conn.prepare_cached("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)").map_err(db_error)?
                .execute(params![hash, user_id, millis(now), millis(now + ttl)]).map_err(db_error)?;
            Ok::<_, StoreError>(())
        })
        .await?;
        Ok(token)
    }

    /// The account a session token belongs to, unless it expired or was ended.
    pub async fn session_user(&self, token: String, now: DateTime<Utc>) -> Result<Option<User>> {
        let hash = token_hash(&token);
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT u.id, u.email, u.role, u.stylist_id FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2",
            ).map_err(db_error)?
            .query_row(params![hash, millis(now)], user_from_row)
            .optional().map_err(db_error)?
            .transpose()
        })
        .await
    }

    /// Ends a session (sign-out).
    pub async fn end_session(&self, token: String) -> Result<()> {
        let hash = token_hash(&token);
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .map_err(db_error)?
                .execute([hash])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// The random secret called `name` (hex, 32 bytes), made on first use and kept in the
    /// database, so links signed with it stay valid across restarts.
    pub async fn secret(&self, name: &'static str) -> Result<String> {
        let fresh = new_token();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            )
            .map_err(db_error)?
            .execute(params![name, fresh])
            .map_err(db_error)?;
            conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
                .map_err(db_error)?
                .query_row([name], |row| row.get(0))
                .map_err(db_error)
        })
        .await
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .map_err(db_error)?
                .execute([millis(now)])
                .map_err(db_error)? as u64)
        })
        .await
    }
}
