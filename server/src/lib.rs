//! The `engage` binary's library: configuration, wiring, HTTP handlers and CLI commands,
//! kept in a library so integration tests can build the same router the binary serves.

pub mod api;
pub mod assets;
pub mod auth;
pub mod aws;
pub mod backend;
pub mod client_address;
pub mod config;
pub use processors::delivery;
pub mod demo;
pub mod health;
pub mod lambda;
pub mod live;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod replay;
pub mod security;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod tracking;
pub mod transport;
pub mod unsubscribe;
