//! Engage's event pipeline: the cores every runtime drives, and (feature `embedded`) the
//! loops that drive them on the embedded default.
//!
//! ```text
//! client write ──(same transaction)──> change feed ──StreamProcessor──> queue "events"
//!     ──EmailProcessor──> score change (+ draft email, written by an EmailWriter)
//! ```
//!
//! Each processor has a runtime-agnostic core (`process_batch`, `handle_event`) and a loop
//! that drives it from the store's signals; the cores are what a Lambda entry point calls.

pub mod clock;
pub mod delivery;
pub mod email;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod openrouter;
pub mod sender;
pub mod supervise;
pub mod tracking;
pub mod writer;

pub use clock::{Clock, SystemClock};
pub use email::EmailCore;
pub use writer::{DraftRequest, EmailWriter, TemplateWriter, Usage, WriterError, Written};

/// The queue that carries domain events from the stream processor to the email processor.
pub use ports::EVENTS_QUEUE;

/// Why a processor could not do its work; the message is retried or dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] ports::StoreError),
    #[error("message is not a domain event this version understands: {0}")]
    Malformed(String),
    #[error("client {0} does not exist")]
    UnknownClient(domain::ClientId),
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// The event bus (SNS on AWS) did not take the events.
    #[error("could not publish events: {0}")]
    Publish(String),
    /// An approved email could not be delivered (this attempt; the queue retries).
    #[error("could not deliver the email: {0}")]
    Delivery(String),
    /// Handling this message panicked; the panic was caught and the message is retried.
    #[error("handling this message panicked: {0}")]
    Panicked(String),
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
