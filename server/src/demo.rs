//! Demo data: a small styling team and a book of clients with plausible names, created
//! through the same write path as real clients, so the pipeline scores each one and drafts
//! their welcome email.

use domain::{ClientEmail, ClientName, NewClient, StylistId};
use processors::Clock;
use store::{CreateClientError, Store};

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

/// A small deterministic generator, so demo data is the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

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

/// The `index`-th demo client of stylist-round-robin order.
fn demo_client(rng: &mut SplitMix, index: u32) -> NewClient {
    let (first, last) = (rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
    let domain = rng.pick(&["example.com", "example.org", "example.net"]);
    let email = format!(
        "{}.{}{}@{domain}",
        mailbox_part(first),
        mailbox_part(last),
        index + 1
    );
    NewClient {
        name: ClientName::parse(&format!("{first} {last}")).expect("demo names are valid"),
        email: ClientEmail::parse(&email).expect("demo emails are valid"),
        stylist_id: StylistId::new(STYLISTS[index as usize % STYLISTS.len()].0),
    }
}

/// Adds the demo stylists and `clients` demo clients, logging progress as it goes.
/// Clients whose email already exists are skipped, so seeding twice is harmless.
pub async fn seed(store: &Store, clock: &dyn Clock, clients: u32) -> anyhow::Result<u32> {
    for (id, name, email) in STYLISTS {
        store
            .upsert_stylist(StylistId::new(id), name.to_owned(), email.to_owned())
            .await?;
    }
    let mut rng = SplitMix(0x5EED_CAFE);
    let mut created = 0;
    let step = (clients / 10).max(1);
    for index in 0..clients {
        match store
            .create_client(demo_client(&mut rng, index), clock.now())
            .await
        {
            Ok(_) => created += 1,
            Err(CreateClientError::Invalid(_)) => {} // already seeded
            Err(CreateClientError::Store(error)) => return Err(error.into()),
        }
        if (index + 1) % step == 0 || index + 1 == clients {
            tracing::info!(done = index + 1, total = clients, "seeding demo clients");
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_clients_are_valid_and_unique() {
        let mut rng = SplitMix(1);
        let emails: std::collections::HashSet<_> =
            (0..500).map(|i| demo_client(&mut rng, i).email).collect();
        assert_eq!(emails.len(), 500);
    }

    #[test]
    fn accented_and_punctuated_names_become_plain_mailboxes() {
        assert_eq!(mailbox_part("García"), "garcia");
        assert_eq!(mailbox_part("O'Brien"), "obrien");
        assert_eq!(mailbox_part("Tomás"), "tomas");
    }
}
