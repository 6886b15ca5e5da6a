//! Engage's REST API from a program: add a client, record a Fix, read the score and why,
//! and list the drafts awaiting review.
//!
//! ```sh
//! ENGAGE_URL=http://127.0.0.1:3000 ENGAGE_API_KEY=ek_… ENGAGE_STYLIST=st-maya \
//!     cargo run -p engage-client --example quickstart
//! ```
//!
//! The server's tests run [`quickstart`] against a real server (server/tests/client.rs).

use domain::api::{ListClients, ListEmails, RecordActivity};
use domain::profile::FixInput;
use domain::{Activity, ClientInput, EmailStatus, ProfileInput};
use engage_client::{Engage, Error};

/// What the quickstart did.
#[derive(Debug)]
pub struct Outcome {
    pub client_id: domain::ClientId,
    pub version_after_fix: u64,
    pub score: u8,
    /// The score's reasons, one sentence each.
    pub reasons: Vec<String>,
    pub clients_in_book: usize,
    pub drafts_waiting: usize,
}

pub async fn quickstart(engage: &Engage, stylist: &str, email: &str) -> Result<Outcome, Error> {
    let created = engage
        .create_client(&ClientInput {
            name: "Quinn Quickstart".into(),
            email: email.into(),
            stylist_id: stylist.into(),
            status: None,
            profile: ProfileInput {
                signed_up_on: Some("2025-06-01".into()),
                email_opt_in: true,
                ..ProfileInput::default()
            },
        })
        .await?;
    let fix = RecordActivity {
        activity: Activity::Fix(FixInput {
            delivered_on: "2025-07-01".into(),
            items_sent: 5,
            items_kept: 3,
            order_value: "180.00".into(),
        }),
        expected_version: Some(created.version),
    };
    let after = engage.record_activity(&created.id, &fix).await?;
    let score = engage.score(&created.id).await?;
    let book = engage.clients(&ListClients::default()).await?;
    let drafts = engage
        .emails(&ListEmails {
            status: Some(EmailStatus::Drafted),
            limit: Some(50),
        })
        .await?;
    Ok(Outcome {
        client_id: created.id,
        version_after_fix: after.version,
        score: score.current.score,
        reasons: score
            .current
            .factors
            .iter()
            .map(|factor| factor.explanation())
            .collect(),
        clients_in_book: book.clients.len(),
        drafts_waiting: drafts.len(),
    })
}

#[allow(dead_code)] // Only the example's own build calls it; the tests call `quickstart`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setting = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let engage = Engage::new(&setting("ENGAGE_URL")?, &setting("ENGAGE_API_KEY")?)?;
    let stylist = setting("ENGAGE_STYLIST")?;
    let outcome = quickstart(&engage, &stylist, "quinn.quickstart@example.com").await?;
    println!(
        "{} scores {} after a Fix:",
        outcome.client_id, outcome.score
    );
    for reason in &outcome.reasons {
        println!("  {reason}");
    }
    println!(
        "{} client(s) on the first page, {} draft(s) awaiting review",
        outcome.clients_in_book, outcome.drafts_waiting
    );
    Ok(())
}
