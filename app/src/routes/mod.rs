//! One module per page.

pub mod clients;
pub mod emails;

/// How an instant reads in a table: UTC, to the minute.
pub(crate) fn format_instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
