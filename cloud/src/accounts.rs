//! [`Accounts`] on DynamoDB, in the records table:
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | account | `USER#{email}` | `USER` (argon2id hash, role, stylist); `gsi1pk` `USERS` |
//! | session | `SESSION#{sha256 of token}` | `SESSION` (TTL `expires_at`) |
//! | secret | `SETTING#{name}` | `SETTING` |
//! | API key | `APIKEY#{id}` | `APIKEY` (SHA-256 of the secret, role, stylist); `gsi1pk` `APIKEYS` |
//!
//! Tokens are stored only as their SHA-256, as on SQLite; expired sessions are refused on
//! read and removed by the table's TTL.

use crate::dynamo::{DynamoStore, describe};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use domain::user::{ApiKey, NewApiKey, Password, Role, User, api_key_id};
use domain::{ClientEmail, StylistId, ValidationErrors};
use ports::{Accounts, AddUserError, Result, StoreError};
use ports::{
    check_account_role, hash_password, new_api_key_secret, new_token, password_matches, token_hash,
};
use std::collections::HashMap;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn user_of(item: &HashMap<String, AttributeValue>) -> Result<User> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("account item: {what}"));
    Ok(User {
        id: text(item, "id").ok_or_else(|| corrupt("id"))?,
        email: ClientEmail::parse(&text(item, "email").ok_or_else(|| corrupt("email"))?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        role: Role::parse(&text(item, "role").ok_or_else(|| corrupt("role"))?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        stylist_id: text(item, "stylist_id").map(StylistId::new),
    })
}

fn millis_of(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Option<DateTime<Utc>>> {
    item.get(name)
        .map(|v| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| StoreError::Corrupt(format!("API key item: {name}")))
        })
        .transpose()
}

fn api_key_of(item: &HashMap<String, AttributeValue>) -> Result<ApiKey> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("API key item: {what}"));
    Ok(ApiKey {
        id: text(item, "id").ok_or_else(|| corrupt("id"))?,
        name: text(item, "name").ok_or_else(|| corrupt("name"))?,
        role: Role::parse(&text(item, "role").ok_or_else(|| corrupt("role"))?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        stylist_id: text(item, "stylist_id").map(StylistId::new),
        created_at: millis_of(item, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        revoked_at: millis_of(item, "revoked_at")?,
    })
}

fn user_attributes(user: &User) -> Vec<(String, AttributeValue)> {
    let mut attributes = vec![
        ("id".to_owned(), s(user.id.clone())),
        ("email".to_owned(), s(user.email.as_str())),
        ("role".to_owned(), s(user.role.as_str())),
    ];
    if let Some(stylist) = &user.stylist_id {
        attributes.push(("stylist_id".to_owned(), s(stylist.as_str())));
    }
    attributes
}

#[async_trait::async_trait]
impl Accounts for DynamoStore {
    async fn add_user(
        &self,
        email: ClientEmail,
        role: Role,
        stylist: Option<StylistId>,
        password: Password,
        now: DateTime<Utc>,
    ) -> Result<User, AddUserError> {
        check_account_role(role, stylist.as_ref())?;
        if let Some(stylist) = &stylist
            && !self.stylist_exists(stylist).await?
        {
            return Err(
                ValidationErrors::single("stylist_id", "This is not a known stylist.").into(),
            );
        }
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| StoreError::Cancelled)??;
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            role,
            stylist_id: stylist,
        };
        let mut item: HashMap<String, AttributeValue> =
            user_attributes(&user).into_iter().collect();
        item.insert("pk".into(), s(format!("USER#{}", user.email.as_str())));
        item.insert("sk".into(), s("USER"));
        item.insert("kind".into(), s("user"));
        // Listed under one index partition, so counting accounts needs no scan.
        item.insert("gsi1pk".into(), s("USERS"));
        item.insert("gsi1sk".into(), s(user.email.as_str()));
        item.insert("password_hash".into(), s(hash));
        item.insert("created_at".into(), s(now.to_rfc3339()));
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(user),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(ValidationErrors::single(
                    "email",
                    "An account with this email address already exists.",
                )
                .into())
            }
            Err(error) => Err(StoreError::Service(describe(error)).into()),
        }
    }

    async fn user_count(&self) -> Result<u64> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(crate::dynamo::BY_LIST)
                .key_condition_expression("gsi1pk = :users")
                .expression_attribute_values(":users", s("USERS"))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Service(describe(e)))?;
            count += out.count.max(0) as u64;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    async fn authenticate(&self, email: String, password: String) -> Result<Option<User>> {
        let email = email.trim().to_lowercase();
        let item = self.item(format!("USER#{email}"), "USER").await?;
        let found = item
            .map(|item| {
                let hash = text(&item, "password_hash")
                    .ok_or_else(|| StoreError::Corrupt("account without a password".into()))?;
                Ok::<_, StoreError>((user_of(&item)?, hash))
            })
            .transpose()?;
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

    async fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String> {
        let token = new_token();
        let expires = now + ttl;
        let mut item: HashMap<String, AttributeValue> = user_attributes(user).into_iter().collect();
        item.insert("pk".into(), s(format!("SESSION#{}", token_hash(&token))));
        item.insert("sk".into(), s("SESSION"));
        item.insert(
            "expires_at".into(),
            AttributeValue::N(expires.timestamp().to_string()),
        );
        item.insert(
            "expires_ms".into(),
            AttributeValue::N(expires.timestamp_millis().to_string()),
        );
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::Service(describe(e)))?;
        Ok(token)
    }

    async fn session_user(&self, token: String, now: DateTime<Utc>) -> Result<Option<User>> {
        let Some(item) = self
            .item(format!("SESSION#{}", token_hash(&token)), "SESSION")
            .await?
        else {
            return Ok(None);
        };
        let expires: i64 = item
            .get("expires_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("session without an expiry".into()))?;
        if expires <= now.timestamp_millis() {
            return Ok(None);
        }
        user_of(&item).map(Some)
    }

    async fn end_session(&self, token: String) -> Result<()> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(format!("SESSION#{}", token_hash(&token))))
            .key("sk", s("SESSION"))
            .send()
            .await
            .map_err(|e| StoreError::Service(describe(e)))?;
        Ok(())
    }

    /// The table's TTL removes expired sessions (and reads refuse them before that).
    async fn purge_sessions(&self, _now: DateTime<Utc>) -> Result<u64> {
        Ok(0)
    }

    async fn secret(&self, name: &'static str) -> Result<String> {
        let key = format!("SETTING#{name}");
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(key.clone()))
            .item("sk", s("SETTING"))
            .item("value", s(new_token()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if let Err(error) = put
            && !error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            return Err(StoreError::Service(describe(error)));
        }
        self.item(key, "SETTING")
            .await?
            .and_then(|item| text(&item, "value"))
            .ok_or_else(|| StoreError::Corrupt(format!("setting {name} vanished")))
    }

    async fn create_api_key(
        &self,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
        now: DateTime<Utc>,
    ) -> Result<NewApiKey, AddUserError> {
        let name = ApiKey::parse_name(&name).map_err(|e| ValidationErrors(vec![e]))?;
        check_account_role(role, stylist.as_ref())?;
        if let Some(stylist) = &stylist
            && !self.stylist_exists(stylist).await?
        {
            return Err(
                ValidationErrors::single("stylist_id", "This is not a known stylist.").into(),
            );
        }
        let (id, secret, hash) = new_api_key_secret();
        let created_at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let key = ApiKey {
            id,
            name,
            role,
            stylist_id: stylist,
            created_at,
            revoked_at: None,
        };
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(format!("APIKEY#{}", key.id)))
            .item("sk", s("APIKEY"))
            // Listed under one index partition, so listing keys needs no scan.
            .item("gsi1pk", s("APIKEYS"))
            .item("gsi1sk", s(key.id.clone()))
            .item("id", s(key.id.clone()))
            .item("name", s(key.name.clone()))
            .item("role", s(key.role.as_str()))
            .item("secret_hash", s(hash))
            .item(
                "created_at",
                AttributeValue::N(created_at.timestamp_millis().to_string()),
            )
            .condition_expression("attribute_not_exists(pk)");
        if let Some(stylist) = &key.stylist_id {
            put = put.item("stylist_id", s(stylist.as_str()));
        }
        put.send()
            .await
            .map_err(|e| StoreError::Service(describe(e)))?;
        Ok(NewApiKey { key, secret })
    }

    async fn api_key(&self, secret: String) -> Result<Option<ApiKey>> {
        let Some(id) = api_key_id(&secret) else {
            return Ok(None);
        };
        let Some(item) = self.item(format!("APIKEY#{id}"), "APIKEY").await? else {
            return Ok(None);
        };
        let stored = text(&item, "secret_hash").unwrap_or_default();
        let presented = token_hash(&secret);
        // Both are hex SHA-256 of equal length: compare every byte.
        let same = stored.len() == presented.len()
            && stored
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if !same {
            return Ok(None);
        }
        let key = api_key_of(&item)?;
        Ok(key.revoked_at.is_none().then_some(key))
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut keys = self
            .query_all(Some(crate::dynamo::BY_LIST), "gsi1pk", "APIKEYS".into())
            .await?
            .iter()
            .map(api_key_of)
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, id: String, now: DateTime<Utc>) -> Result<Option<ApiKey>> {
        let update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(format!("APIKEY#{id}")))
            .key("sk", s("APIKEY"))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.timestamp_millis().to_string()),
            )
            .send()
            .await;
        match update {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(StoreError::Service(describe(error))),
        }
        self.item(format!("APIKEY#{id}"), "APIKEY")
            .await?
            .map(|item| api_key_of(&item))
            .transpose()
    }
}
