//! The pipeline on the embedded default: the loops that drive the runtime-agnostic cores
//! from the SQLite store's change feed and queues, in the `engage` process. On AWS the
//! same cores are driven by Lambda functions (`engage-aws`); this module, and with it the
//! `store` crate, is left out of that build (feature `embedded`).

mod email;
mod sender;
mod stream;

pub use email::{BatchReport, EmailProcessor, EmailProcessorConfig};
pub use sender::Sender;
pub use stream::{CHECKPOINT, FeedRetention, StreamProcessor};
