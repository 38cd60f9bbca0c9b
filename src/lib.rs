//! lintel: door-controller firmware speaking the Security PUSH protocol 3.1.2.
//!
//! See ARCHITECTURE.md for the map of modules, threads and invariants.

pub mod app;
pub mod clock;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod link;
pub mod logging;
pub mod platform;
pub mod private_files;
pub mod protocol;
pub mod session;
pub mod simcli;
pub mod store;
pub mod upgrade;
pub mod watchdog;
