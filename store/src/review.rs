//! The expert in the loop: reading drafts, editing, approving, rejecting and redrafting
//! them, each step recorded with who and when. A stylist's calls carry their stylist id as
//! the scope, and an email outside it is "not found", exactly like one that does not exist.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use domain::views::{EmailDetail, EmailSummary, ReviewEntry};
use domain::{ClientId, DraftText, EmailId, EmailKind, EmailStatus, EventId, StylistId};
use ports::{EmailFilter, Outgoing, ReviewError, Reviewer, check_reject_reason};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Appends a step to an email's review record.
pub(crate) fn log_review(
    conn: &Connection,
    email: &EmailId,
    action: &str,
    actor: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO email_reviews (email_id, action, actor, note, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![email.as_str(), action, actor, note, millis(now)])?;
    Ok(())
}

/// A review step, as the dashboard's views count it.
enum Review {
    Approved,
    Rejected,
    Delivered { sent: bool },
}

/// Counts a review step of `email` in the dashboard's views.
fn count_review(
    conn: &Connection,
    email: &EmailId,
    review: Review,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let (stylist, writer, created, ai_subject, ai_body, subject, body): (
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        String,
        String,
    ) = conn
        .prepare_cached(
            "SELECT stylist_id, writer, created_at, ai_subject, ai_body_text, subject, body_text FROM emails WHERE id = ?1",
        )?
        .query_row([email.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })?;
    let minutes = (millis(now) - created).max(0) as f64 / 60_000.0;
    match review {
        Review::Approved => {
            let edit = crate::views::approved_edit(
                ai_subject.as_deref(),
                ai_body.as_deref(),
                &subject,
                &body,
            );
            crate::views::reviewed(
                conn,
                &stylist,
                &writer,
                crate::views::Verdict::Approved { edit },
                minutes,
                now,
            )
        }
        Review::Rejected => crate::views::reviewed(
            conn,
            &stylist,
            &writer,
            crate::views::Verdict::Rejected,
            minutes,
            now,
        ),
        Review::Delivered { sent } => crate::views::delivered(conn, &stylist, &writer, sent, now),
    }
}

/// What delivery needs to send `email`.
fn outgoing_email(conn: &Connection, email: &EmailId) -> rusqlite::Result<Outgoing> {
    conn.prepare_cached(
        "SELECT e.client_id, c.name, c.email, s.name, s.email, e.subject, e.body_text
         FROM emails e JOIN clients c ON c.id = e.client_id JOIN stylists s ON s.id = e.stylist_id WHERE e.id = ?1",
    )?
    .query_row([email.as_str()], |r| {
        Ok(Outgoing {
            id: email.clone(),
            client_id: ClientId::new(r.get::<_, String>(0)?),
            client_name: r.get(1)?,
            client_email: r.get(2)?,
            stylist_name: r.get(3)?,
            stylist_email: r.get(4)?,
            text: DraftText {
                subject: r.get(5)?,
                body_text: r.get(6)?,
            },
        })
    })
}

const SUMMARY_COLUMNS: &str = "e.id, e.client_id, c.name, s.name, e.kind, e.subject, e.status, e.writer, e.created_at, e.prompt_tokens, e.completion_tokens";

fn summary_from_row(row: &Row<'_>) -> Result<EmailSummary> {
    let kind: String = row.get(4).map_err(db_error)?;
    let status: String = row.get(6).map_err(db_error)?;
    Ok(EmailSummary {
        id: EmailId::new(row.get::<_, String>(0).map_err(db_error)?),
        client_id: ClientId::new(row.get::<_, String>(1).map_err(db_error)?),
        client_name: row.get(2).map_err(db_error)?,
        stylist_name: row.get(3).map_err(db_error)?,
        kind: EmailKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("email kind {kind}")))?,
        subject: row.get(5).map_err(db_error)?,
        status: parse_status(&status)?,
        writer: row.get(7).map_err(db_error)?,
        created_at: instant(row.get(8).map_err(db_error)?)?,
        prompt_tokens: row.get(9).map_err(db_error)?,
        completion_tokens: row.get(10).map_err(db_error)?,
    })
}

fn parse_status(raw: &str) -> Result<EmailStatus> {
    EmailStatus::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("email status {raw}")))
}

/// The status of `email` if `scope` may see it; `NotFound` otherwise.
fn status_in_scope(
    conn: &Connection,
    email: &EmailId,
    scope: Option<&StylistId>,
) -> Result<EmailStatus, ReviewError> {
    let status: Option<String> = conn
        .prepare_cached(
            "SELECT status FROM emails WHERE id = ?1 AND (?2 IS NULL OR stylist_id = ?2)",
        )
        .map_err(db_error)?
        .query_row(params![email.as_str(), scope.map(|s| s.as_str())], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_error)?;
    let status = status.ok_or(ReviewError::NotFound)?;
    Ok(parse_status(&status)?)
}

/// `NotDraft` unless the email awaits review.
fn draft_in_scope(
    conn: &Connection,
    email: &EmailId,
    scope: Option<&StylistId>,
) -> Result<(), ReviewError> {
    match status_in_scope(conn, email, scope)? {
        EmailStatus::Drafted => Ok(()),
        status => Err(ReviewError::NotDraft { status }),
    }
}

fn set_status(
    conn: &Connection,
    email: &EmailId,
    status: EmailStatus,
    reviewer: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE emails SET status = ?2, reviewed_by = ?3, reviewed_at = ?4, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![email.as_str(), status.as_str(), reviewer, millis(now)])?;
    Ok(())
}

/// The query for [`Store::find_emails`], and its arguments.
fn find_emails_sql(filter: &EmailFilter, limit: u32) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = format!(
        "SELECT {SUMMARY_COLUMNS}
         FROM emails e JOIN clients c ON c.id = e.client_id JOIN stylists s ON s.id = e.stylist_id
         WHERE 1 = 1"
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let conditions = [
        (
            "e.client_id",
            filter.client.as_ref().map(|c| c.as_str().to_owned()),
        ),
        (
            "e.stylist_id",
            filter.scope.as_ref().map(|s| s.as_str().to_owned()),
        ),
        ("e.status", filter.status.map(|s| s.as_str().to_owned())),
    ];
    for (column, value) in conditions {
        if let Some(value) = value {
            args.push(value.into());
            sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
    }
    args.push(i64::from(limit).into());
    sql.push_str(&format!(
        " ORDER BY e.created_at DESC, e.id DESC LIMIT ?{}",
        args.len()
    ));
    (sql, args)
}

impl Store {
    /// Emails matching `filter`, newest first. Each combination of filters has its index
    /// (by client, by stylist and status, by status, by time), so only the rows shown are read.
    pub async fn find_emails(&self, filter: EmailFilter, limit: u32) -> Result<Vec<EmailSummary>> {
        self.read(move |conn| find_emails_on(conn, &filter, limit))
            .await
    }
    /// The newest emails first (of one client, or of all), with client and stylist names.
    pub async fn list_emails(
        &self,
        client: Option<ClientId>,
        limit: u32,
    ) -> Result<Vec<EmailSummary>> {
        self.find_emails(
            EmailFilter {
                client,
                ..EmailFilter::default()
            },
            limit,
        )
        .await
    }

    /// One email with its words and review record, if `scope` may see it.
    pub async fn email_detail(
        &self,
        email: EmailId,
        scope: Option<StylistId>,
    ) -> Result<Option<EmailDetail>> {
        self.read(move |conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}, c.email, e.body_text, e.reason, e.ai_body_text IS NOT NULL OR e.ai_subject IS NOT NULL, e.reject_reason, e.withdrawn_reason, e.send_after
                     FROM emails e JOIN clients c ON c.id = e.client_id JOIN stylists s ON s.id = e.stylist_id
                     WHERE e.id = ?1 AND (?2 IS NULL OR e.stylist_id = ?2)"
                )).map_err(db_error)?
                .query_row(params![email.as_str(), scope.as_ref().map(|s| s.as_str())], |row| {
                    Ok((
                        summary_from_row(row),
                        row.get::<_, String>(11)?,
                        row.get::<_, String>(12)?,
                        row.get::<_, String>(13)?,
                        row.get::<_, bool>(14)?,
                        row.get::<_, Option<String>>(15)?,
                        row.get::<_, Option<String>>(16)?,
                        row.get::<_, Option<i64>>(17)?,
                    ))
                })
                .optional().map_err(db_error)?;
            let Some((summary, client_email, body_text, reason, edited, reject_reason, withdrawn, send_after)) = found else {
                return Ok(None);
            };
            let mut stmt = conn.prepare_cached(
                "SELECT action, actor, note, at FROM email_reviews WHERE email_id = ?1 ORDER BY id",
            ).map_err(db_error)?;
            let reviews = stmt
                .query_map([email.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, i64>(3)?))
                }).map_err(db_error)?
                .map(|row| {
                    let (action, actor, note, at) = row.map_err(db_error)?;
                    Ok(ReviewEntry { action, actor, note, at: instant(at)? })
                })
                .collect::<Result<Vec<_>>>()?;
            let conversion = crate::decisions::of_email(conn, &email)?.and_then(|d| d.conversion);
            Ok(Some(EmailDetail {
                conversion,
                send_after: send_after.map(instant).transpose()?,
                summary: summary?,
                client_email,
                body_text,
                reason,
                edited,
                reject_reason,
                withdrawn: withdrawn.as_deref().and_then(domain::consent::NoEmail::parse),
                reviews,
            }))
        })
        .await
    }

    /// Replaces a draft's subject and body with a stylist's words. The writer's own words
    /// are kept (once) so the edit can be measured against them.
    pub async fn edit_email(
        &self,
        email: EmailId,
        text: DraftText,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.write(move |conn| {
            draft_in_scope(conn, &email, by.scope.as_ref())?;
            conn.prepare_cached(
                "UPDATE emails SET ai_subject = COALESCE(ai_subject, subject), ai_body_text = COALESCE(ai_body_text, body_text),
                        subject = ?2, body_text = ?3, body_html = ?4, updated_at = ?5
                 WHERE id = ?1",
            ).map_err(db_error)?
            .execute(params![email.as_str(), text.subject, text.body_text, text.body_html(), millis(now)]).map_err(db_error)?;
            log_review(conn, &email, "edited", &by.name, None, now).map_err(db_error)?;
            Ok::<_, ReviewError>(())
        })
        .await
    }

    /// Approves drafts for sending and queues each on [`DELIVERIES_QUEUE`] in the same
    /// commit. All or nothing: if any email is not an approvable draft in scope, none is
    /// approved. Callers check consent first (`processors::sender::approve`).
    pub async fn approve_emails(
        &self,
        emails: Vec<(EmailId, Option<DateTime<Utc>>)>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.write(move |conn| {
            for (email, send_after) in &emails {
                draft_in_scope(conn, email, by.scope.as_ref())?;
                set_status(conn, email, EmailStatus::Approved, &by.name, now).map_err(db_error)?;
                conn.prepare_cached("UPDATE emails SET send_after = ?2 WHERE id = ?1")
                    .map_err(db_error)?
                    .execute(params![email.as_str(), send_after.map(millis)])
                    .map_err(db_error)?;
                let note = send_after
                    .map(|at| format!("to be sent at {}", at.format("%Y-%m-%d %H:%M UTC")));
                log_review(conn, email, "approved", &by.name, note.as_deref(), now)
                    .map_err(db_error)?;
                count_review(conn, email, Review::Approved, now).map_err(db_error)?;
                queue_delivery(conn, email, "approved", *send_after, now)?;
            }
            Ok::<_, ReviewError>(())
        })
        .await?;
        self.inner.signals.queue_filled.notify_waiters();
        Ok(())
    }

    /// Records the outcome of delivering an approved email: `Err` holds why it failed.
    /// Nothing happens unless the email is still approved (a retry after a crash).
    pub async fn record_delivery(
        &self,
        email: EmailId,
        outcome: std::result::Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(move |conn| {
            let (status, action, note) = match &outcome {
                Ok(()) => ("sent", "sent", None),
                Err(error) => ("failed", "failed", Some(error.as_str())),
            };
            let changed = conn
                .prepare_cached("UPDATE emails SET status = ?2, sent_at = CASE WHEN ?2 = 'sent' THEN ?3 ELSE sent_at END, updated_at = ?3 WHERE id = ?1 AND status = 'approved'").map_err(db_error)?
                .execute(params![email.as_str(), status, millis(now)]).map_err(db_error)?;
            if changed == 1 {
                log_review(conn, &email, action, "delivery", note, now).map_err(db_error)?;
                count_review(conn, &email, Review::Delivered { sent: outcome.is_ok() }, now).map_err(db_error)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
    }

    /// Rejects a draft with the reviewer's reason; the client will not receive it.
    pub async fn reject_email(
        &self,
        email: EmailId,
        reason: String,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        let reason = check_reject_reason(&reason)?;
        self.write(move |conn| {
            draft_in_scope(conn, &email, by.scope.as_ref())?;
            set_status(conn, &email, EmailStatus::Rejected, &by.name, now).map_err(db_error)?;
            conn.prepare_cached("UPDATE emails SET reject_reason = ?2 WHERE id = ?1")
                .map_err(db_error)?
                .execute(params![email.as_str(), reason])
                .map_err(db_error)?;
            log_review(conn, &email, "rejected", &by.name, Some(&reason), now).map_err(db_error)?;
            count_review(conn, &email, Review::Rejected, now).map_err(db_error)?;
            Ok::<_, ReviewError>(())
        })
        .await
    }

    /// Asks for a new draft of pending email `email`: puts a `redraft_requested` event on
    /// `queue`, to be handled like any event. Refused unless the email awaits review.
    pub async fn request_redraft(
        &self,
        queue: &'static str,
        email: EmailId,
        instruction: Option<String>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<EventId, ReviewError> {
        let event_id = EventId::new(uuid::Uuid::now_v7().to_string());
        let id = event_id.clone();
        self.write(move |conn| {
            draft_in_scope(conn, &email, by.scope.as_ref())?;
            let (client, stylist, version): (String, String, u64) = conn
                .prepare_cached(
                    "SELECT e.client_id, e.stylist_id, c.version FROM emails e JOIN clients c ON c.id = e.client_id WHERE e.id = ?1",
                ).map_err(db_error)?
                .query_row([email.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db_error)?;
            log_review(conn, &email, "redraft_requested", &by.name, instruction.as_deref(), now).map_err(db_error)?;
            let event = domain::DomainEvent {
                schema_version: domain::event::EVENT_SCHEMA_VERSION,
                id: id.clone(),
                client_id: ClientId::new(client),
                stylist_id: StylistId::new(stylist),
                client_version: version,
                occurred_at: now,
                kind: domain::EventKind::RedraftRequested { email_id: email, instruction },
            };
            let body = serde_json::to_string(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            conn.prepare_cached(
                "INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            ).map_err(db_error)?
            .execute(params![queue, id.as_str(), body, millis(now)]).map_err(db_error)?;
            crate::feed::log_event(conn, &event, &body).map_err(db_error)?;
            Ok::<_, ReviewError>(())
        })
        .await?;
        self.inner.signals.queue_filled.notify_waiters();
        Ok(event_id)
    }
}

fn drafts_with_clients_on(
    conn: &Connection,
    ids: Vec<EmailId>,
    scope: Option<StylistId>,
) -> Result<Vec<(EmailId, domain::Client)>, ReviewError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        draft_in_scope(conn, &id, scope.as_ref())?;
        let client: String = conn
            .prepare_cached("SELECT client_id FROM emails WHERE id = ?1")
            .map_err(db_error)?
            .query_row([id.as_str()], |r| r.get(0))
            .map_err(db_error)?;
        let client = crate::clients::client_by_id(conn, &ClientId::new(client))?
            .ok_or_else(|| StoreError::Corrupt(format!("email {id} without its client")))?;
        found.push((id, client));
    }
    Ok(found)
}

/// Puts a delivery request for `email` on the deliveries queue; `why` makes the message's
/// dedup id, so approving once queues once and each resend queues anew.
/// A scheduled request (`send_after`) stays invisible until then.
fn queue_delivery(
    conn: &Connection,
    email: &EmailId,
    why: &str,
    send_after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let body = serde_json::to_string(&ports::DeliveryRequest {
        email_id: email.clone(),
        send_after,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
    ).map_err(db_error)?
    .execute(params![
        ports::DELIVERIES_QUEUE,
        format!("{email}#{why}"),
        body,
        millis(now),
        millis(send_after.map_or(now, |at| at.max(now)))
    ]).map_err(db_error)?;
    Ok(())
}

#[async_trait::async_trait]
impl ports::Sending for Store {
    async fn drafts_with_clients(
        &self,
        ids: Vec<EmailId>,
        scope: Option<StylistId>,
    ) -> Result<Vec<(EmailId, domain::Client)>, ReviewError> {
        self.read(move |conn| Ok(drafts_with_clients_on(conn, ids, scope)))
            .await?
    }

    async fn withdraw(
        &self,
        email: EmailId,
        reason: domain::consent::NoEmail,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.write(move |conn| {
            let action = match status_in_scope(conn, &email, None)? {
                EmailStatus::Drafted => "withdrawn",
                EmailStatus::Approved => "send_withdrawn",
                status => return Err(ReviewError::NotDraft { status }),
            };
            conn.prepare_cached(
                "UPDATE emails SET status = 'withdrawn', withdrawn_reason = ?2, updated_at = ?3 WHERE id = ?1",
            ).map_err(db_error)?
            .execute(params![email.as_str(), reason.as_str(), millis(now)]).map_err(db_error)?;
            log_review(conn, &email, action, &actor, Some(&reason.to_string()), now).map_err(db_error)?;
            if action == "withdrawn" {
                let stylist: String = conn
                    .prepare_cached("SELECT stylist_id FROM emails WHERE id = ?1").map_err(db_error)?
                    .query_row([email.as_str()], |r| r.get(0)).map_err(db_error)?;
                crate::views::withdrawn_draft(conn, &stylist).map_err(db_error)?;
            }
            Ok::<_, ReviewError>(())
        })
        .await
    }

    async fn approve(
        &self,
        approvals: Vec<(EmailId, Option<DateTime<Utc>>)>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.approve_emails(approvals, by, now).await
    }

    async fn sendable(&self, email: EmailId) -> Result<Option<ports::Sendable>> {
        self.read(move |conn| {
            let Some(status) =
                status_in_scope(conn, &email, None)
                    .map(Some)
                    .or_else(|e| match e {
                        ReviewError::NotFound => Ok(None),
                        ReviewError::Store(e) => Err(e),
                        other => Err(StoreError::Corrupt(other.to_string())),
                    })?
            else {
                return Ok(None);
            };
            let outgoing = outgoing_email(conn, &email).map_err(db_error)?;
            let client = crate::clients::client_by_id(conn, &outgoing.client_id)?
                .ok_or_else(|| StoreError::Corrupt(format!("email {email} without its client")))?;
            Ok(Some(ports::Sendable {
                outgoing,
                status,
                client,
            }))
        })
        .await
    }

    async fn record_delivery(
        &self,
        email: EmailId,
        outcome: std::result::Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Store::record_delivery(self, email, outcome, now).await
    }

    async fn resend(
        &self,
        email: EmailId,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.write(move |conn| {
            match status_in_scope(conn, &email, by.scope.as_ref())? {
                EmailStatus::Failed => {}
                status => return Err(ReviewError::NotFailed { status }),
            }
            conn.prepare_cached(
                "UPDATE emails SET status = 'approved', send_after = NULL, updated_at = ?2 WHERE id = ?1",
            )
            .map_err(db_error)?
            .execute(params![email.as_str(), millis(now)])
            .map_err(db_error)?;
            log_review(conn, &email, "resend_requested", &by.name, None, now).map_err(db_error)?;
            let attempt = uuid::Uuid::now_v7();
            queue_delivery(conn, &email, &format!("resend-{attempt}"), None, now)?;
            Ok::<_, ReviewError>(())
        })
        .await?;
        self.inner.signals.queue_filled.notify_waiters();
        Ok(())
    }
}

/// Emails matching `filter`, newest first, on `conn`.
pub(crate) fn find_emails_on(
    conn: &Connection,
    filter: &EmailFilter,
    limit: u32,
) -> Result<Vec<EmailSummary>> {
    let (sql, args) = find_emails_sql(filter, limit);
    let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(db_error)?;
    let mut emails = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        emails.push(summary_from_row(row)?);
    }
    Ok(emails)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every email list reads through an index in its order: no scan of all emails.
    #[tokio::test]
    async fn every_email_list_query_walks_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("engage.db")).unwrap();
        for client in [None, Some(ClientId::new("c-1"))] {
            for scope in [None, Some(StylistId::new("st-maya"))] {
                for status in [None, Some(EmailStatus::Drafted)] {
                    let filter = EmailFilter {
                        scope: scope.clone(),
                        client: client.clone(),
                        status,
                    };
                    let (sql, args) = find_emails_sql(&filter, 50);
                    let plan = store.query_plan(sql, args).await.unwrap();
                    assert!(
                        !plan.iter().any(|step| step == "SCAN e"),
                        "{filter:?}: {plan:?}"
                    );
                    if client.is_none() {
                        assert!(
                            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                            "{filter:?}: {plan:?}"
                        );
                    }
                }
            }
        }
    }
}
