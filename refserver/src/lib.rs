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
//! Token policy: the init request and `/iclock/registry` need no token (the
//! device knows neither RegistryCode nor SessionID yet); `/iclock/push` is
//! accepted without a token or with `md5(RegistryCode+SN)` (the SessionID is
//! only learnt from the push reply or the `registry=ok` block) or with the full
//! `md5(RegistryCode+SN+SessionID)`; every other `/iclock/` request needs the
//! full token or gets 401 (unless [`ServerConfig::token_check`] is off). The
//! check result is recorded in [`RequestLog::token`] either way.
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
pub mod crypto;
pub mod fault;
pub mod http;
mod misbehave;
mod protocol;
mod queue;
mod range;
pub mod secure;
mod server;
pub mod state;
pub mod tls;

pub use config::{
    commands, AckMode, Approval, Clock, CmdFormat, CmdFormatChoice, Encryption, Framing, IdStyle,
    InitReply, LineEnding, ServerConfig, VersionKey,
};
pub use fault::{hostile_catalogue, Fault, FaultKind, HostileCase, Target};
pub use server::RefServer;
pub use state::{
    md5_hex, CommandResult, QueuedCommand, Record, Registration, RequestLog, Session, State,
    TokenCheck, Upload,
};
pub use tls::TlsIdentity;
