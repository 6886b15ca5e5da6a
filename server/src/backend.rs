//! What the web layer reads besides the app's `EngageService`: [`Operations`] (pipeline
//! figures, the change stamp that keeps pages current, the fitted BG/NBD model, dead
//! letters, the clients to rescore), a port of `ports` like the others, so the same router
//! and operator commands serve from the embedded SQLite store or from DynamoDB/SQS.

pub use ports::{ClientKeys, Operations};
