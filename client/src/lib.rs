//! A typed client for Engage's REST API. Every request and answer is a type from
//! `domain` (`domain::api` for the API's own, `domain::views` for what pages show too), so
//! a program and the server agree by construction; a refusal is the server's RFC 9457
//! problem, with the fields at fault.
//!
//! ```no_run
//! # async fn run() -> Result<(), engage_client::Error> {
//! let engage = engage_client::Engage::new("https://engage.example.com", "ek_…")?;
//! let page = engage.clients(&Default::default()).await?;
//! for client in page.clients {
//!     println!("{} {:?}", client.name, client.band);
//! }
//! # Ok(()) }
//! ```
//!
//! `examples/quickstart.rs` is a whole program; the server's tests run it against a real
//! server.

use domain::api::{
    ApproveMany, ClientRecord, ListClients, ListEmails, Problem, RecordActivity, RejectEmail,
    ScoreReport,
};
use domain::views::{ApproveReport, ClientDetail, ClientPage, EmailDetail, EmailSummary};
use domain::{ClientId, ClientInput, EmailId};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request; the problem says why (and which fields).
    #[error("{} {}: {}", .0.status, .0.title, .0.detail)]
    Refused(Box<Problem>),
    /// The server answered with something that is not the API's (a proxy's error page).
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
    /// The request did not get an answer, or the answer did not parse.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("not a base URL: {0}")]
    BadUrl(String),
}

/// A connection to one Engage server, signed with one API key.
#[derive(Clone)]
pub struct Engage {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for Engage {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engage")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Engage {
    /// `base` is the server's address (`https://engage.example.com`), `key` an API key's
    /// secret (`engage apikey create`).
    pub fn new(base: &str, key: &str) -> Result<Self, Error> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BadUrl(base.to_owned()));
        }
        Ok(Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            key: key.to_owned(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.key)
    }

    async fn send<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Error> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body = response.text().await?;
        match serde_json::from_str::<Problem>(&body) {
            Ok(problem) => Err(Error::Refused(Box::new(problem))),
            Err(_) => Err(Error::Unexpected { status, body }),
        }
    }

    /// One page of clients (a stylist's key sees its own book only).
    pub async fn clients(&self, query: &ListClients) -> Result<ClientPage, Error> {
        Self::send(self.request(Method::GET, "/clients").query(query)).await
    }

    /// A client with its score, history, timeline and emails.
    pub async fn client(&self, id: &ClientId) -> Result<ClientDetail, Error> {
        Self::send(self.request(Method::GET, &format!("/clients/{id}"))).await
    }

    /// Adds a client; the answer carries the version to send back with an update.
    pub async fn create_client(&self, input: &ClientInput) -> Result<ClientRecord, Error> {
        Self::send(self.request(Method::POST, "/clients").json(input)).await
    }

    /// Records a Fix, a purchase, feedback, or an email open or click.
    pub async fn record_activity(
        &self,
        id: &ClientId,
        activity: &RecordActivity,
    ) -> Result<ClientRecord, Error> {
        let path = format!("/clients/{id}/activities");
        Self::send(self.request(Method::POST, &path).json(activity)).await
    }

    /// The client's score now with its factors, its history and the model's outlook.
    pub async fn score(&self, id: &ClientId) -> Result<ScoreReport, Error> {
        Self::send(self.request(Method::GET, &format!("/clients/{id}/score"))).await
    }

    /// Emails newest first, by status.
    pub async fn emails(&self, query: &ListEmails) -> Result<Vec<EmailSummary>, Error> {
        Self::send(self.request(Method::GET, "/emails").query(query)).await
    }

    pub async fn email(&self, id: &EmailId) -> Result<EmailDetail, Error> {
        Self::send(self.request(Method::GET, &format!("/emails/{id}"))).await
    }

    /// Approves drafts, all or none, to be sent at once.
    pub async fn approve(&self, ids: Vec<EmailId>) -> Result<ApproveReport, Error> {
        self.approve_at(ids, "now").await
    }

    /// Approves drafts, all or none, to be sent when `send_at` says: `now`,
    /// `usual_hour` (each client's usual open hour), or an RFC 3339 time.
    pub async fn approve_at(
        &self,
        ids: Vec<EmailId>,
        send_at: &str,
    ) -> Result<ApproveReport, Error> {
        let body = ApproveMany {
            ids,
            send_at: Some(send_at.to_owned()),
        };
        Self::send(self.request(Method::POST, "/emails/approve").json(&body)).await
    }

    /// Rejects a draft with a reason; answers with the rejected email.
    pub async fn reject(&self, id: &EmailId, reason: &str) -> Result<EmailDetail, Error> {
        let body = RejectEmail {
            reason: reason.to_owned(),
        };
        let path = format!("/emails/{id}/reject");
        Self::send(self.request(Method::POST, &path).json(&body)).await
    }
}
