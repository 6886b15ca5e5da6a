//! Demo data: a small styling team and a book of clients with plausible names and Fix
//! histories (see `domain::sample`), written with their change records like any client, so
//! the pipeline scores each one and drafts welcomes for the newest.

use crate::telemetry::Progress;
use chrono::{DateTime, Utc};
use domain::{ClientEmail, ClientName, NewClient, StylistId, sample};
use processors::Clock;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store::{CreateClientError, ImportOutcome, Store};

pub const STYLISTS: [(&str, &str, &str); 4] = [
    ("st-maya", "Maya Okafor", "maya.okafor@engage.example"),
    (
        "st-jonas",
        "Jonas Lindqvist",
        "jonas.lindqvist@engage.example",
    ),
    ("st-priya", "Priya Raman", "priya.raman@engage.example"),
    (
        "st-lucia",
        "Lucía Ferreira",
        "lucia.ferreira@engage.example",
    ),
];

const FIRST_NAMES: [&str; 40] = [
    "Amelia", "Noah", "Olivia", "Liam", "Sofia", "Mateo", "Aisha", "Ethan", "Chloe", "Lucas",
    "Hannah", "Ravi", "Grace", "Daniel", "Mia", "Samuel", "Zoe", "Kenji", "Isabel", "Omar",
    "Freya", "Theo", "Leila", "Marcus", "Nora", "Elias", "Ingrid", "Tomás", "Yara", "Felix",
    "Camille", "Jamal", "Ava", "Hugo", "Mei", "Oscar", "Selin", "Ruby", "Diego", "Clara",
];

const LAST_NAMES: [&str; 40] = [
    "Bennett",
    "Nakamura",
    "Okonkwo",
    "García",
    "Novak",
    "Haddad",
    "Schmidt",
    "Kowalski",
    "Andersson",
    "Rossi",
    "Dubois",
    "Mensah",
    "Patel",
    "O'Brien",
    "Silva",
    "Yilmaz",
    "Kim",
    "Moreau",
    "Jensen",
    "Costa",
    "Ivanova",
    "Hughes",
    "Fischer",
    "Mendes",
    "Tanaka",
    "Walsh",
    "Abiodun",
    "Larsen",
    "Romero",
    "Chen",
    "Murphy",
    "Varga",
    "Ahmed",
    "Keller",
    "Sato",
    "Brennan",
    "Lopez",
    "Petrov",
    "Adeyemi",
    "Holm",
];

/// An email-safe, ASCII version of a name part ("García" -> "garcia", "O'Brien" -> "obrien").
fn mailbox_part(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' => Some('a'),
            'é' | 'è' => Some('e'),
            'í' => Some('i'),
            'ó' | 'ö' => Some('o'),
            'ú' | 'ü' => Some('u'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The `index`-th demo client (stylists in round-robin order) with a history drawn as of
/// `now`. The same index always gives the same person and history.
fn demo_client(index: u32, now: DateTime<Utc>) -> NewClient {
    let mut rng = SmallRng::seed_from_u64(0x5EED_CAFE ^ u64::from(index).wrapping_mul(0x9E37_79B9));
    let (first, last) = (pick(&mut rng, &FIRST_NAMES), pick(&mut rng, &LAST_NAMES));
    let domain = pick(&mut rng, &["example.com", "example.org", "example.net"]);
    let email = format!(
        "{}.{}{}@{domain}",
        mailbox_part(first),
        mailbox_part(last),
        index + 1
    );
    let sample = sample::client(&mut rng, now);
    NewClient {
        name: ClientName::parse(&format!("{first} {last}")).expect("demo names are valid"),
        email: ClientEmail::parse(&email).expect("demo emails are valid"),
        stylist_id: StylistId::new(STYLISTS[index as usize % STYLISTS.len()].0),
        status: sample.status,
        profile: sample.profile,
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Clients written per transaction: large enough to be fast, small enough to keep the
/// writer lock short for the running app.
const BATCH: u32 = 500;

/// Adds the demo stylists and `clients` demo clients with realistic Fix histories, in
/// batches, showing a progress bar on a terminal and logging progress otherwise. Clients
/// whose email already exists are skipped, so seeding twice is harmless.
pub async fn seed(store: &Store, clock: &dyn Clock, clients: u32) -> anyhow::Result<ImportOutcome> {
    for (id, name, email) in STYLISTS {
        store
            .upsert_stylist(StylistId::new(id), name.to_owned(), email.to_owned())
            .await?;
    }
    let mut progress = Progress::new(u64::from(clients), "seeding demo clients");
    let mut total = ImportOutcome::default();
    let mut start = 0;
    while start < clients {
        let end = (start + BATCH).min(clients);
        let now = clock.now();
        let batch = (start..end).map(|i| demo_client(i, now)).collect();
        let outcome = store
            .import_clients(batch, now)
            .await
            .map_err(|e| match e {
                CreateClientError::Invalid(errors) => {
                    anyhow::anyhow!("demo data was refused: {errors}")
                }
                CreateClientError::Store(error) => error.into(),
            })?;
        total.created += outcome.created;
        total.skipped += outcome.skipped;
        progress.set(u64::from(end));
        start = end;
    }
    progress.finish();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_clients_are_unique_and_reproducible() {
        let now = Utc::now();
        let emails: std::collections::HashSet<_> =
            (0..500).map(|i| demo_client(i, now).email).collect();
        assert_eq!(emails.len(), 500);
        assert_eq!(demo_client(7, now), demo_client(7, now));
    }

    #[test]
    fn accented_and_punctuated_names_become_plain_mailboxes() {
        assert_eq!(mailbox_part("García"), "garcia");
        assert_eq!(mailbox_part("O'Brien"), "obrien");
        assert_eq!(mailbox_part("Tomás"), "tomas");
    }
}
