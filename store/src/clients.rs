//! Client and stylist records. Every client write appends its change record in the same
//! transaction, so the change feed can never miss or invent a write.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use domain::bgnbd::CustomerSummary;
use domain::views::{ClientPage, ClientQuery, ClientSort, ClientSummary, Stylist};
use domain::{
    Band, ChangeRecord, Client, ClientEmail, ClientId, ClientName, ClientStatus, NewClient,
    Profile, StylistId, ValidationErrors,
};
use ports::{CreateClientError, ImportOutcome, ListError, UpdateClientError, first_version};
use rusqlite::{Connection, OptionalExtension, Row, params};

const CLIENT_COLUMNS: &str =
    "id, name, email, stylist_id, status, version, created_at, updated_at, profile";

impl Store {
    /// Adds or renames a stylist.
    pub async fn upsert_stylist(&self, id: StylistId, name: String, email: String) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO stylists (id, name, email) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email",
                params![id.as_str(), name, email],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    pub async fn list_stylists(&self) -> Result<Vec<Stylist>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, name FROM stylists ORDER BY name")
                .map_err(db_error)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(Stylist {
                        id: StylistId::new(row.get::<_, String>(0)?),
                        name: row.get(1)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_error)
        })
        .await
    }

    pub async fn get_stylist(&self, id: StylistId) -> Result<Option<Stylist>> {
        self.read(move |conn| stylist_by_id(conn, &id)).await
    }

    /// Stores a new client (version 1) and its change record in one transaction.
    pub async fn create_client(
        &self,
        new: NewClient,
        now: DateTime<Utc>,
    ) -> Result<Client, CreateClientError> {
        let client = first_version(new, now);
        let stored = client.clone();
        self.write(move |tx| {
            check_references(tx, &stored)?;
            let profile = insert_client(tx, &stored)?;
            append_change(tx, None, (&stored, &profile))?;
            Ok::<_, CreateClientError>(())
        })
        .await?;
        Ok(client)
    }

    /// Stores many new clients in one transaction, each with its change record, so the
    /// pipeline scores them like any other. Clients whose email is already on file are
    /// skipped; an unknown stylist fails the whole batch and writes nothing.
    pub async fn import_clients(
        &self,
        batch: Vec<NewClient>,
        now: DateTime<Utc>,
    ) -> Result<ImportOutcome, CreateClientError> {
        let outcome = self
            .write(move |tx| {
                let mut outcome = ImportOutcome::default();
                for new in batch {
                    let client = first_version(new, now);
                    match check_references(tx, &client) {
                        Ok(()) => {}
                        Err(CreateClientError::Invalid(errors))
                            if errors.message_for("email").is_some() =>
                        {
                            outcome.skipped += 1;
                            continue;
                        }
                        Err(other) => return Err(other),
                    }
                    let profile = insert_client(tx, &client)?;
                    append_change(tx, None, (&client, &profile))?;
                    outcome.created += 1;
                }
                Ok::<_, CreateClientError>(outcome)
            })
            .await?;
        Ok(outcome)
    }

    /// Each client's purchase summary for the BG/NBD model as of the end of
    /// `observation_end`: Fix deliveries and Freestyle purchases are the purchases.
    /// Clients who never bought are left out, as the model requires.
    pub async fn customer_summaries(
        &self,
        observation_end: NaiveDate,
    ) -> Result<Vec<CustomerSummary>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT profile FROM clients")
                .map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            let mut summaries = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                let profile: Profile = parse_profile(&row.get::<_, String>(0).map_err(db_error)?)?;
                summaries.extend(profile.repeat_summary(observation_end));
            }
            Ok(summaries)
        })
        .await
    }

    pub async fn get_client(&self, id: ClientId) -> Result<Option<Client>> {
        self.read(move |conn| client_by_id(conn, &id)).await
    }

    /// Changes a client: `change` edits a copy of the stored record; if anything differs,
    /// the new version is stored with its change record in one transaction. With
    /// `expected_version`, the update is refused if the client has moved on since
    /// (optimistic concurrency). A change that alters nothing writes nothing.
    pub async fn update_client(
        &self,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Client) -> Result<(), ValidationErrors> + Send + 'static,
    ) -> Result<Client, UpdateClientError> {
        self.update_client_in(None, id, expected_version, now, change)
            .await
    }

    /// [`Store::update_client`] for someone who may change only `scope`'s clients: any
    /// other client is `NotFound`, checked in the same transaction as the write.
    pub async fn update_client_in(
        &self,
        scope: Option<StylistId>,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Client) -> Result<(), ValidationErrors> + Send + 'static,
    ) -> Result<Client, UpdateClientError> {
        self.write(move |conn| {
                let (old, old_profile) = client_and_profile_by_id(conn, &id)?
                    .filter(|(c, _)| scope.as_ref().is_none_or(|s| *s == c.stylist_id))
                    .ok_or(UpdateClientError::NotFound)?;
                if let Some(expected) = expected_version
                    && expected != old.version
                {
                    return Err(UpdateClientError::VersionConflict {
                        current: old.version,
                    });
                }
                let mut new = old.clone();
                change(&mut new)?;
                // Identity and bookkeeping belong to the store, not to the change.
                new.id = old.id.clone();
                new.version = old.version;
                new.created_at = old.created_at;
                new.updated_at = old.updated_at;
                if new == old {
                    return Ok(old);
                }
                new.version = old.version + 1;
                new.updated_at = now.max(old.updated_at);
                if new.email != old.email {
                    refuse_taken_email(conn, &new).map_err(db_error)??;
                }
                if new.stylist_id != old.stylist_id {
                    refuse_unknown_stylist(conn, &new.stylist_id).map_err(db_error)??;
                    let band: Option<String> = conn
                        .prepare_cached("SELECT band FROM clients WHERE id = ?1").map_err(db_error)?
                        .query_row([old.id.as_str()], |r| r.get(0)).map_err(db_error)?;
                    crate::views::client_moved(conn, old.stylist_id.as_str(), new.stylist_id.as_str(), band.as_deref(), now).map_err(db_error)?;
                }
                let profile = serde_json::to_string(&new.profile)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let updated = conn
                    .prepare_cached(
                        "UPDATE clients SET name = ?3, email = ?4, stylist_id = ?5, status = ?6, version = ?7, updated_at = ?8, profile = ?9
                         WHERE id = ?1 AND version = ?2",
                    ).map_err(db_error)?
                    .execute(params![
                        new.id.as_str(),
                        old.version,
                        new.name.as_str(),
                        new.email.as_str(),
                        new.stylist_id.as_str(),
                        new.status.as_str(),
                        new.version,
                        millis(new.updated_at),
                        profile,
                    ]).map_err(db_error)?;
                if updated != 1 {
                    return Err(UpdateClientError::VersionConflict {
                        current: old.version,
                    });
                }
                append_change(conn, Some((&old, &old_profile)), (&new, &profile))?;
                Ok(new)
            })
            .await
    }

    /// A page of clients matching `query`, with their stylist and latest score; only
    /// `stylist`'s book when given. Each sort walks its own index from the cursor, so a
    /// page costs the same however deep it is and however many clients there are.
    pub async fn list_clients(
        &self,
        query: ClientQuery,
        stylist: Option<StylistId>,
    ) -> Result<ClientPage, ListError> {
        let cursor = query
            .after
            .as_deref()
            .map(Cursor::parse)
            .transpose()
            .map_err(|()| ListError::BadCursor)?;
        self.read(move |conn| {
            let search_capped = match trigram_phrase(&query.search) {
                Some(phrase) => conn
                    .prepare_cached(
                        "SELECT COUNT(*) > ?2 FROM (SELECT 1 FROM clients_search WHERE clients_search MATCH ?1 LIMIT ?2 + 1)",
                    ).map_err(db_error)?
                    .query_row(params![phrase, ClientQuery::MAX_SEARCH_MATCHES], |r| r.get(0)).map_err(db_error)?,
                None => false,
            };
            let (sql, args) = list_sql(&query, stylist.as_ref(), cursor.as_ref());
            let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(db_error)?;
            let mut clients = Vec::new();
            let mut last_key = 0;
            while let Some(row) = rows.next().map_err(db_error)? {
                if clients.len() == query.limit as usize {
                    let last: &ClientSummary = clients.last().expect("limit is at least 1");
                    return Ok(ClientPage {
                        next: Some(
                            Cursor {
                                key: last_key,
                                id: last.id.as_str().to_owned(),
                            }
                            .to_string(),
                        ),
                        clients,
                        search_capped,
                    });
                }
                last_key = row.get(10).map_err(db_error)?;
                clients.push(summary_from_row(row)?);
            }
            Ok(ClientPage {
                clients,
                next: None,
                search_capped,
            })
        })
        .await
        .map_err(ListError::Store)
    }

    /// A page of client keys (id, stylist, version) in id order, after `after`: for jobs
    /// that walk every client.
    pub async fn client_keys(
        &self,
        after: Option<ClientId>,
        limit: u32,
    ) -> Result<Vec<(ClientId, StylistId, u64)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, stylist_id, version FROM clients WHERE id > ?1 ORDER BY id LIMIT ?2",
            ).map_err(db_error)?;
            let after = after.as_ref().map_or("", |id| id.as_str()).to_owned();
            let rows = stmt
                .query_map(params![after, limit], |row| {
                    Ok((
                        ClientId::new(row.get::<_, String>(0)?),
                        StylistId::new(row.get::<_, String>(1)?),
                        row.get::<_, u64>(2)?,
                    ))
                })
                .map_err(db_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_error)
        })
        .await
    }

    pub async fn client_count(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM clients", [], |row| row.get(0))
                .map_err(db_error)
        })
        .await
    }
}

/// Where a page ended: the sort key and id of its last row, as `key~id`.
struct Cursor {
    key: i64,
    id: String,
}

impl Cursor {
    fn parse(raw: &str) -> std::result::Result<Self, ()> {
        let (key, id) = raw.split_once('~').ok_or(())?;
        let key = key.parse().map_err(|_| ())?;
        if id.is_empty() || id.len() > 100 {
            return Err(());
        }
        Ok(Self {
            key,
            id: id.to_owned(),
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}~{}", self.key, self.id)
    }
}

fn summary_from_row(row: &Row<'_>) -> Result<ClientSummary> {
    let corrupt = |what: String| StoreError::Corrupt(what);
    let status: String = row.get(5).map_err(db_error)?;
    let band: Option<String> = row.get(7).map_err(db_error)?;
    Ok(ClientSummary {
        id: ClientId::new(row.get::<_, String>(0).map_err(db_error)?),
        name: row.get(1).map_err(db_error)?,
        email: row.get(2).map_err(db_error)?,
        stylist_id: StylistId::new(row.get::<_, String>(3).map_err(db_error)?),
        stylist_name: row.get(4).map_err(db_error)?,
        status: ClientStatus::parse(&status).map_err(|e| corrupt(e.to_string()))?,
        score: row.get(6).map_err(db_error)?,
        band: band
            .as_deref()
            .map(|b| Band::parse(b).ok_or_else(|| corrupt(format!("band {b}"))))
            .transpose()?,
        created_at: instant(row.get(8).map_err(db_error)?)?,
        last_activity_at: instant(row.get(9).map_err(db_error)?)?,
    })
}

/// The full-text query for a search long enough for the trigram index (3+ characters).
fn trigram_phrase(search: &str) -> Option<String> {
    let search = search.trim();
    (search.chars().count() >= 3).then(|| format!("\"{}\"", search.replace('"', "\"\"")))
}

/// The query for one page of clients, and its arguments.
fn list_sql(
    query: &ClientQuery,
    stylist: Option<&StylistId>,
    cursor: Option<&Cursor>,
) -> (String, Vec<rusqlite::types::Value>) {
    let (key, order, before) = match query.sort {
        ClientSort::Newest => ("c.created_at", "DESC", "<"),
        ClientSort::ScoreLowest => ("COALESCE(c.score, -1)", "ASC", ">"),
        ClientSort::ScoreHighest => ("COALESCE(c.score, -1)", "DESC", "<"),
        ClientSort::RecentActivity => ("c.updated_at", "DESC", "<"),
    };
    let mut sql = format!(
            "SELECT c.id, c.name, c.email, c.stylist_id, s.name, c.status, c.score, c.band, c.created_at, c.updated_at, {key}
             FROM clients c JOIN stylists s ON s.id = c.stylist_id WHERE 1 = 1"
        );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: rusqlite::types::Value| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(stylist) = &stylist {
        arg(
            &mut sql,
            " AND c.stylist_id = ?",
            stylist.as_str().to_owned().into(),
        );
    }
    if let Some(status) = query.status {
        arg(
            &mut sql,
            " AND c.status = ?",
            status.as_str().to_owned().into(),
        );
    }
    if let Some(band) = query.band {
        let (low, high) = band.score_range();
        arg(&mut sql, " AND c.score >= ?", i64::from(low).into());
        arg(&mut sql, " AND c.score <= ?", i64::from(high).into());
    }
    let search = query.search.trim();
    if let Some(phrase) = trigram_phrase(search) {
        // Trigram index: any part of a name or address, case-insensitive; the most
        // recently added matches, at most MAX_SEARCH_MATCHES of them.
        arg(
            &mut sql,
            " AND c.id IN (SELECT client_id FROM clients_search WHERE clients_search MATCH ?",
            phrase.into(),
        );
        arg(
            &mut sql,
            " ORDER BY rowid DESC LIMIT ?)",
            i64::from(ClientQuery::MAX_SEARCH_MATCHES).into(),
        );
    } else if !search.is_empty() {
        // Too short for trigrams: names and addresses that start with it.
        let escaped: String = search
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("{escaped}%");
        arg(
            &mut sql,
            " AND (c.name LIKE ? ESCAPE '\\'",
            pattern.clone().into(),
        );
        arg(&mut sql, " OR c.email LIKE ? ESCAPE '\\')", pattern.into());
    }
    if let Some(cursor) = &cursor {
        args.push(cursor.key.into());
        args.push(cursor.id.clone().into());
        sql.push_str(&format!(
            " AND ({key}, c.id) {before} (?{}, ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    args.push(i64::from(query.limit + 1).into());
    sql.push_str(&format!(
        " ORDER BY {key} {order}, c.id {order} LIMIT ?{}",
        args.len()
    ));
    (sql, args)
}

/// Turns constraint problems into field errors before the insert, so the user learns
/// which field is wrong instead of seeing a database message.
fn check_references(tx: &Connection, client: &Client) -> Result<(), CreateClientError> {
    refuse_unknown_stylist(tx, &client.stylist_id).map_err(db_error)??;
    refuse_taken_email(tx, client).map_err(db_error)??;
    Ok(())
}

/// A field error unless `stylist` is a stylist on file.
pub(crate) fn refuse_unknown_stylist(
    conn: &Connection,
    stylist: &StylistId,
) -> rusqlite::Result<Result<(), ValidationErrors>> {
    let known = conn
        .prepare_cached("SELECT 1 FROM stylists WHERE id = ?1")?
        .exists([stylist.as_str()])?;
    Ok(if known {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            "stylist_id",
            "This is not a known stylist.",
        ))
    })
}

/// A field error if another client already has `client`'s email address.
fn refuse_taken_email(
    conn: &Connection,
    client: &Client,
) -> rusqlite::Result<Result<(), ValidationErrors>> {
    let taken = conn
        .prepare_cached("SELECT 1 FROM clients WHERE email = ?1 AND id <> ?2")?
        .exists(params![client.email.as_str(), client.id.as_str()])?;
    Ok(if taken {
        Err(ValidationErrors::single(
            "email",
            "A client with this email address already exists.",
        ))
    } else {
        Ok(())
    })
}

/// Inserts a new client; returns its profile as stored (JSON).
fn insert_client(tx: &Connection, client: &Client) -> Result<String> {
    let profile =
        serde_json::to_string(&client.profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached(&format!(
        "INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .map_err(db_error)?
    .execute(params![
        client.id.as_str(),
        client.name.as_str(),
        client.email.as_str(),
        client.stylist_id.as_str(),
        client.status.as_str(),
        client.version,
        millis(client.created_at),
        millis(client.updated_at),
        profile,
    ])
    .map_err(db_error)?;
    Ok(profile)
}

fn parse_profile(json: &str) -> Result<Profile> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("client profile: {e}")))
}

/// Appends a client write to the change feed: the images before and after, each given
/// with its profile as stored (JSON), so the profile is serialised once per write.
pub(crate) fn append_change(
    tx: &Connection,
    old: Option<(&Client, &str)>,
    (new, new_profile): (&Client, &str),
) -> Result<()> {
    let old_image = old
        .map(|(client, profile)| client_image(client, profile))
        .transpose()?;
    tx.prepare_cached(
        "INSERT INTO client_changes (client_id, version, old_image, new_image, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    ).map_err(db_error)?
    .execute(params![new.id.as_str(), new.version, old_image, client_image(new, new_profile)?, millis(new.updated_at)],
    ).map_err(db_error)?;
    crate::feed::note_appended(ChangeRecord {
        seq: tx.last_insert_rowid() as u64,
        old: old.map(|(client, _)| client.clone()),
        new: new.clone(),
        recorded_at: instant(millis(new.updated_at))?,
    });
    Ok(())
}

/// A client's change image: the JSON of `Client`, written around its profile's JSON as
/// stored (already checked: it was parsed or just written) instead of serialising the
/// profile again.
fn client_image(client: &Client, profile: &str) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        id: &'a ClientId,
        name: &'a ClientName,
        email: &'a ClientEmail,
        stylist_id: &'a StylistId,
        status: &'a ClientStatus,
        version: u64,
        created_at: &'a DateTime<Utc>,
        updated_at: &'a DateTime<Utc>,
    }
    let mut image = serde_json::to_string(&Head {
        id: &client.id,
        name: &client.name,
        email: &client.email,
        stylist_id: &client.stylist_id,
        status: &client.status,
        version: client.version,
        created_at: &client.created_at,
        updated_at: &client.updated_at,
    })
    .map_err(|e| StoreError::Corrupt(format!("client image: {e}")))?;
    // `{"id":…,"updated_at":…}` becomes `{"id":…,"updated_at":…,"profile":{…}}`.
    image.pop();
    image.reserve(profile.len() + 12);
    image.push_str(",\"profile\":");
    image.push_str(profile);
    image.push('}');
    Ok(image)
}

pub(crate) fn client_by_id(conn: &Connection, id: &ClientId) -> Result<Option<Client>> {
    Ok(client_and_profile_by_id(conn, id)?.map(|(client, _)| client))
}

/// A stored client with its profile's JSON as stored.
fn client_and_profile_by_id(conn: &Connection, id: &ClientId) -> Result<Option<(Client, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"
    ))
    .map_err(db_error)?
    .query_row([id.as_str()], client_from_row)
    .optional()
    .map_err(db_error)?
    .transpose()
}

fn client_from_row(row: &Row<'_>) -> rusqlite::Result<Result<(Client, String)>> {
    let corrupt = |e: domain::FieldError| StoreError::Corrupt(e.to_string());
    let (id, name, email, stylist_id, status): (String, String, String, String, String) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    );
    let (version, created_at, updated_at): (u64, i64, i64) =
        (row.get(5)?, row.get(6)?, row.get(7)?);
    let profile: String = row.get(8)?;
    Ok((|| {
        let client = Client {
            id: ClientId::new(id),
            name: ClientName::parse(&name).map_err(corrupt)?,
            email: ClientEmail::parse(&email).map_err(corrupt)?,
            stylist_id: StylistId::new(stylist_id),
            status: ClientStatus::parse(&status).map_err(corrupt)?,
            version,
            created_at: instant(created_at)?,
            updated_at: instant(updated_at)?,
            profile: parse_profile(&profile)?,
        };
        Ok((client, profile))
    })())
}

pub(crate) fn stylist_by_id(conn: &Connection, id: &StylistId) -> Result<Option<Stylist>> {
    conn.prepare_cached("SELECT id, name FROM stylists WHERE id = ?1")
        .map_err(db_error)?
        .query_row([id.as_str()], |row| {
            Ok(Stylist {
                id: StylistId::new(row.get::<_, String>(0)?),
                name: row.get(1)?,
            })
        })
        .optional()
        .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image written around the stored profile is the client's own JSON, so the feed
    /// reads back exactly the record that was written.
    #[test]
    fn a_change_image_is_the_json_of_the_client() {
        let input = domain::ClientInput {
            name: "Ada \"Countess\" Lovelace".into(),
            email: "ada@example.com".into(),
            stylist_id: "st-1".into(),
            status: None,
            profile: domain::ProfileInput {
                email_opt_in: true,
                signed_up_on: Some("2025-03-01".into()),
                styles: vec!["classic".into(), "bohemian".into()],
                fixes: vec![domain::profile::FixInput {
                    delivered_on: "2025-04-02".into(),
                    items_sent: 5,
                    items_kept: 3,
                    order_value: "129.50".into(),
                }],
                ..Default::default()
            },
        };
        let now = "2026-01-01T10:00:00.123456789Z".parse().unwrap();
        let client = first_version(NewClient::parse(&input, now).unwrap(), now);
        let profile = serde_json::to_string(&client.profile).unwrap();
        let image = client_image(&client, &profile).unwrap();
        assert_eq!(image, serde_json::to_string(&client).unwrap());
        assert_eq!(serde_json::from_str::<Client>(&image).unwrap(), client);
    }

    /// Every page of the clients list walks an index in its sort order: no full scan of
    /// the clients and no sorting of them, whatever the sort, scope and filters (a search
    /// looks its matches up in the trigram index and sorts those).
    #[tokio::test]
    async fn every_client_list_query_walks_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("engage.db")).unwrap();
        let maya = StylistId::new("st-maya");
        let cursor = Cursor {
            key: 40,
            id: "c-1".into(),
        };
        for sort in ClientSort::ALL {
            for scope in [None, Some(&maya)] {
                for (band, status, search) in [
                    (None, None, ""),
                    (Some(Band::AtRisk), Some(ClientStatus::Active), ""),
                    (None, None, "lovelace"),
                ] {
                    let query = ClientQuery {
                        search: search.into(),
                        band,
                        status,
                        sort,
                        after: None,
                        limit: 25,
                    };
                    let (sql, args) = list_sql(&query, scope, Some(&cursor));
                    let plan = store.query_plan(sql, args).await.unwrap();
                    let context = format!(
                        "{sort:?} scope={scope:?} band={band:?} search={search:?}: {plan:?}"
                    );
                    assert!(
                        !plan.iter().any(|step| step == "SCAN c"),
                        "full scan: {context}"
                    );
                    // A search sorts only its matches (found through the trigram index).
                    if search.is_empty() {
                        assert!(
                            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                            "sorts rows: {context}"
                        );
                    }
                }
            }
        }
    }
}
