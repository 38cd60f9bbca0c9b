//! `lintel-refserver`: a strict reference server for the Security PUSH
//! protocol 3.1.2 (access-control flavour), for lintel's integration tests
//! and demo. It is never linked into the firmware.
//!
//! By default it follows the spec text (sections 7, 9, 10, 11, 12): init,
//! registration, push, token-checked getrequest/devicecmd/cdata/querydata/
//! ping/file, with everything recorded in memory. Every deviation seen on
//! deployed servers (`shared/interop.md`) is a [`ServerConfig`] knob, and
//! failures are injected with [`Fault`]s.
//!
//! ```
//! use lintel_refserver::{RefServer, ServerConfig};
//! use std::time::Duration;
//!
//! let server = RefServer::start(ServerConfig::default()).unwrap();
//! let id = server.queue_command("SN1", "CONTROL DEVICE 01010105");
//! // ... point a device at server.url() ...
//! let done = server.wait_for(Duration::from_millis(10), |s| !s.results("SN1").is_empty());
//! assert!(!done); // nobody answered in this example
//! assert_eq!(server.pending_commands("SN1")[0].id, id.to_string());
//! ```
#![forbid(unsafe_code)]

mod admin;
pub mod config;
pub mod fault;
pub mod http;
mod protocol;
mod range;
mod server;
pub mod state;

pub use config::{
    commands, AckMode, Approval, Clock, CmdFormat, CmdFormatChoice, Framing, IdStyle, InitReply,
    LineEnding, ServerConfig, VersionKey,
};
pub use fault::{Fault, FaultKind, Target};
pub use server::RefServer;
pub use state::{
    md5_hex, CommandResult, QueuedCommand, Record, Registration, RequestLog, Session, State,
    TokenCheck, Upload,
};
