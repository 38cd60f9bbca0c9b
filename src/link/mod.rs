//! The server link as command executors see it: a small object-safe trait
//! ([`ServerLink`]) for the requests an executor makes while it runs
//! (downloads, querydata and table uploads, pings during long work), its
//! error ([`LinkError`]) and a link with no server behind it
//! ([`OfflineLink`]). It sits below both `session/`, whose connection
//! implements it, and `commands/`, whose executors use it, so neither
//! reaches into the other. It never opens a connection itself.

mod http;

pub use http::{HttpReply, TransportError, UrlRefused};

use crate::protocol::ProtocolVersion;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("server answered {status} to {endpoint}")]
    Status { status: u16, endpoint: String },
    /// A URL (given by the server, or a redirect) the device does not follow.
    #[error("refused: {0}")]
    Refused(#[from] UrlRefused),
}

impl LinkError {
    pub fn status(&self) -> Option<u16> {
        match self {
            LinkError::Status { status, .. } => Some(*status),
            LinkError::Transport(_) | LinkError::Refused(_) => None,
        }
    }
}

/// What command executors may do with the server while they run.
pub trait ServerLink {
    fn serial(&self) -> &str;
    /// `GET <base><path_and_query>`; a non-2xx status is an error.
    fn get(&mut self, path_and_query: &str) -> Result<HttpReply, LinkError>;
    /// `POST <base><path_and_query>` with `body`; a non-2xx status is an error.
    fn post(&mut self, path_and_query: &str, body: &[u8]) -> Result<HttpReply, LinkError>;
    /// GETs `url` (relative to the server base, or absolute on the server's
    /// origin or a host of `[server] allowed_download_hosts`; any other is
    /// [`LinkError::Refused`]) streaming a 2xx body into `sink`, at most
    /// `max_bytes` of it (more is [`TransportError::TooLarge`]); extra
    /// headers such as `Range`. Any status is returned.
    fn download(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        max_bytes: u64,
        sink: &mut dyn Write,
    ) -> Result<HttpReply, LinkError>;
    /// Sends `/iclock/ping` when the heartbeat is due (9: during long work).
    fn keepalive(&mut self);
    /// The largest request body the server accepts.
    fn max_package_size(&self) -> usize;
    /// The protocol version in use: the lower of the device's and the server's.
    fn protocol_version(&self) -> ProtocolVersion;
    /// The server base URL (`http://host:port`), for resolving relative URLs.
    fn base_url(&self) -> &str;
}

/// A link with no server behind it: every request is refused with 501.
/// For running executors in-process (benchmarks, tools) where nothing may
/// reach the network.
#[derive(Debug, Clone)]
pub struct OfflineLink {
    pub serial: String,
}

impl OfflineLink {
    fn refused() -> LinkError {
        LinkError::Status {
            status: 501,
            endpoint: String::new(),
        }
    }
}

impl ServerLink for OfflineLink {
    fn serial(&self) -> &str {
        &self.serial
    }
    fn get(&mut self, _: &str) -> Result<HttpReply, LinkError> {
        Err(Self::refused())
    }
    fn post(&mut self, _: &str, _: &[u8]) -> Result<HttpReply, LinkError> {
        Err(Self::refused())
    }
    fn download(
        &mut self,
        _: &str,
        _: &[(&str, String)],
        _: u64,
        _: &mut dyn Write,
    ) -> Result<HttpReply, LinkError> {
        Err(Self::refused())
    }
    fn keepalive(&mut self) {}
    fn max_package_size(&self) -> usize {
        1 << 20
    }
    fn protocol_version(&self) -> ProtocolVersion {
        crate::protocol::DEVICE_PUSH_VERSION
    }
    fn base_url(&self) -> &str {
        "http://offline.invalid"
    }
}
