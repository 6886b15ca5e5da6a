//! Demo data: a small styling team and a book of clients with plausible names and Fix
//! histories (see `domain::sample`), written with their change records like any client, so
//! the pipeline scores each one and drafts welcomes for the newest.

use crate::telemetry::Progress;
use chrono::{DateTime, Utc};
use domain::user::{Password, Role};
use domain::{ClientEmail, ClientName, NewClient, StylistId, sample};
use ports::{Accounts, CreateClientError, ImportOutcome, Records};
use processors::Clock;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store::Store;

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

/// The `index`-th demo client's name, address and stylist (stylists in round-robin
/// order), drawn from `rng`.
pub(crate) fn identity(rng: &mut SmallRng, index: u32) -> (ClientName, ClientEmail, StylistId) {
    let (first, last) = (pick(rng, &FIRST_NAMES), pick(rng, &LAST_NAMES));
    let domain = pick(rng, &["example.com", "example.org", "example.net"]);
    let email = format!(
        "{}.{}{}@{domain}",
        mailbox_part(first),
        mailbox_part(last),
        index + 1
    );
    (
        ClientName::parse(&format!("{first} {last}")).expect("demo names are valid"),
        ClientEmail::parse(&email).expect("demo emails are valid"),
        StylistId::new(STYLISTS[index as usize % STYLISTS.len()].0),
    )
}

/// The `index`-th demo client with a history drawn as of `now`. The same index always
/// gives the same person and history.
fn demo_client(index: u32, now: DateTime<Utc>) -> NewClient {
    let mut rng = SmallRng::seed_from_u64(0x5EED_CAFE ^ u64::from(index).wrapping_mul(0x9E37_79B9));
    let (name, email, stylist_id) = identity(&mut rng, index);
    let sample = sample::client(&mut rng, now);
    NewClient {
        id: None,
        name,
        email,
        stylist_id,
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

/// [`seed`] through the [`Records`] trait, one client at a time (the AWS backend).
pub async fn seed_records(
    records: &dyn Records,
    clock: &dyn Clock,
    clients: u32,
) -> anyhow::Result<ImportOutcome> {
    for (id, name, email) in STYLISTS {
        records
            .upsert_stylist(StylistId::new(id), name.to_owned(), email.to_owned())
            .await?;
    }
    let mut progress = Progress::new(u64::from(clients), "seeding demo clients");
    let mut total = ImportOutcome::default();
    for index in 0..clients {
        let now = clock.now();
        match records.create_client(demo_client(index, now), now).await {
            Ok(_) => total.created += 1,
            Err(CreateClientError::Invalid(errors)) if errors.message_for("email").is_some() => {
                total.skipped += 1
            }
            Err(CreateClientError::Invalid(errors)) => {
                anyhow::bail!("demo data was refused: {errors}")
            }
            Err(CreateClientError::Store(error)) => return Err(error.into()),
        }
        progress.set(u64::from(index + 1));
    }
    progress.finish();
    Ok(total)
}

/// The demo accounts: a manager, an admin, and one account per demo stylist.
pub fn account_list() -> Vec<(String, Role, Option<StylistId>)> {
    let mut accounts = vec![
        ("manager@engage.example".to_owned(), Role::Manager, None),
        ("admin@engage.example".to_owned(), Role::Admin, None),
    ];
    accounts.extend(STYLISTS.iter().map(|(id, _, email)| {
        (
            (*email).to_owned(),
            Role::Stylist,
            Some(StylistId::new(*id)),
        )
    }));
    accounts
}

/// Where the demo accounts' password is written: beside the database.
pub fn accounts_file(store: &Store) -> std::path::PathBuf {
    store
        .path()
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("demo-accounts.txt")
}

/// Adds the demo accounts with one fresh random password, printed on standard output (for
/// the person who ran the command, not the log) and written to [`accounts_file`].
pub async fn accounts(store: &Store, clock: &dyn Clock) -> anyhow::Result<()> {
    accounts_in(store, &accounts_file(store), clock).await
}

/// What `engage serve` does about accounts on start: none are touched when some exist;
/// on a database without any it adds the demo accounts when demo data was asked for, and
/// otherwise says how to add the first one, since until then nobody can sign in.
pub async fn accounts_on_start(
    store: &Store,
    clock: &dyn Clock,
    demo_data: bool,
) -> anyhow::Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    if demo_data {
        return accounts(store, clock).await;
    }
    tracing::warn!(
        "no accounts yet, so nobody can sign in: add the first with `engage --db {} user add --email you@example.com --role admin` (it asks for the password), or start with --demo-data true for the demo accounts",
        store.path().display()
    );
    Ok(())
}

/// [`accounts`] on any backend, listed in `file`.
pub async fn accounts_in(
    accounts: &dyn Accounts,
    file: &std::path::Path,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let password: String = {
        let mut rng = rand::rngs::StdRng::from_os_rng();
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..16)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let mut listing = format!("Engage demo accounts (password for each: {password})\n");
    for (email, role, stylist) in account_list() {
        let address = ClientEmail::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
        let secret = Password::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
        accounts
            .add_user(address, role, stylist, secret, clock.now())
            .await
            .map_err(|e| anyhow::anyhow!("adding demo account {email}: {e}"))?;
        listing.push_str(&format!("  {:<8} {email}\n", role.as_str()));
    }
    if let Some(folder) = file.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    write_private(file, &listing)?;
    println!("{listing}(also written to {})", file.display());
    tracing::info!(file = %file.display(), "demo accounts added");
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
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
