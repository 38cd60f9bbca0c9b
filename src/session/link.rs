//! The session's authenticated channel to the server, as executors see it:
//! requests carry the token cookie and the standard headers, every answer's
//! `Date` keeps the device clock, and long work can keep the heartbeat.

use super::transport::{HttpReply, HttpRequest, Method, Transport, TransportError};
use crate::clock::{parse_http_date, Clock};
use crate::protocol::ProtocolVersion;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("server answered {status} to {endpoint}")]
    Status { status: u16, endpoint: String },
}

impl LinkError {
    pub fn status(&self) -> Option<u16> {
        match self {
            LinkError::Status { status, .. } => Some(*status),
            LinkError::Transport(_) => None,
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
    /// GETs `url` (absolute, or relative to the server base) streaming the body
    /// into `sink`; extra headers such as `Range`. Any status is returned.
    fn download(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
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

/// The session's connection state shared with executors.
pub struct Connection {
    transport: Box<dyn Transport>,
    base: String,
    serial: String,
    token: Option<String>,
    pub(crate) timeout: Duration,
    clock: Arc<dyn Clock>,
    /// Last getrequest or ping: the heartbeat of section 9.
    last_heartbeat: Instant,
    pub(crate) heartbeat: Duration,
    pub(crate) max_package_size: usize,
    pub(crate) version: ProtocolVersion,
    /// Promised before every exchange: the session reports again within
    /// its timeout.
    pub(crate) liveness: Option<crate::watchdog::Liveness>,
}

impl Connection {
    pub fn new(
        transport: Box<dyn Transport>,
        base: &str,
        serial: &str,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        max_package_size: usize,
    ) -> Self {
        Connection {
            transport,
            base: base.trim_end_matches('/').to_owned(),
            serial: serial.to_owned(),
            token: None,
            timeout,
            clock,
            last_heartbeat: Instant::now(),
            heartbeat: Duration::from_secs(30),
            max_package_size,
            version: ProtocolVersion::DEFAULT_SERVER,
            liveness: None,
        }
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request and returns the reply whatever its status.
    pub fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<HttpReply, TransportError> {
        let url = format!("{}{}", self.base, path_and_query);
        self.send(method, url, body, &[], None)
    }

    fn send(
        &mut self,
        method: Method,
        url: String,
        body: &[u8],
        extra: &[(&str, String)],
        sink: Option<&mut dyn Write>,
    ) -> Result<HttpReply, TransportError> {
        let mut headers = vec![
            ("Accept".to_owned(), "application/push".to_owned()),
            ("Accept-Charset".to_owned(), "UTF-8".to_owned()),
            ("Accept-Language".to_owned(), "en-US".to_owned()),
        ];
        if let Some(token) = &self.token {
            // Only our own cookie: servers add unrelated ones (interop.md).
            headers.push(("Cookie".to_owned(), format!("token={token}")));
        }
        if method == Method::Post {
            headers.push((
                "Content-Type".to_owned(),
                "application/push;charset=UTF-8".to_owned(),
            ));
        }
        for (k, v) in extra {
            headers.push(((*k).to_owned(), v.clone()));
        }
        let request = HttpRequest {
            method,
            url,
            headers,
            body: body.to_vec(),
        };
        let timeout = if sink.is_some() {
            // A download may legitimately take longer than one exchange.
            self.timeout.saturating_mul(6)
        } else {
            self.timeout
        };
        if let Some(l) = &self.liveness {
            l.promise("session", timeout);
        }
        let reply = self.transport.send(&request, timeout, sink)?;
        if let Some(date) = reply.header("Date").and_then(parse_http_date) {
            self.clock.set_utc(date);
        }
        Ok(reply)
    }

    fn checked(&mut self, method: Method, pq: &str, body: &[u8]) -> Result<HttpReply, LinkError> {
        let reply = self.request(method, pq, body)?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(LinkError::Status {
                status: reply.status,
                endpoint: endpoint_of(pq),
            })
        }
    }

    /// Whether the heartbeat is due (no getrequest or ping for RequestDelay).
    pub fn heartbeat_due(&self) -> bool {
        self.last_heartbeat.elapsed() >= self.heartbeat
    }

    /// Records a heartbeat (a getrequest answered).
    pub fn mark_heartbeat(&mut self) {
        self.last_heartbeat = Instant::now();
    }

    pub fn ping(&mut self) -> Result<(), LinkError> {
        let pq = format!("/iclock/ping?SN={}", self.serial);
        self.checked(Method::Get, &pq, b"")?;
        self.mark_heartbeat();
        Ok(())
    }
}

/// The path part of a request, for messages.
pub fn endpoint_of(pq: &str) -> String {
    pq.split('?').next().unwrap_or(pq).to_owned()
}

impl ServerLink for Connection {
    fn serial(&self) -> &str {
        &self.serial
    }

    fn get(&mut self, path_and_query: &str) -> Result<HttpReply, LinkError> {
        self.checked(Method::Get, path_and_query, b"")
    }

    fn post(&mut self, path_and_query: &str, body: &[u8]) -> Result<HttpReply, LinkError> {
        self.checked(Method::Post, path_and_query, body)
    }

    fn download(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        sink: &mut dyn Write,
    ) -> Result<HttpReply, LinkError> {
        let absolute = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else if url.starts_with('/') {
            format!("{}{}", self.base, url)
        } else {
            format!("{}/{}", self.base, url)
        };
        Ok(self.send(Method::Get, absolute, b"", headers, Some(sink))?)
    }

    fn keepalive(&mut self) {
        if self.heartbeat_due() {
            if let Err(e) = self.ping() {
                log::warn!("heartbeat ping failed: {e}; continuing the current work");
            }
        }
    }

    fn max_package_size(&self) -> usize {
        self.max_package_size
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    fn base_url(&self) -> &str {
        &self.base
    }
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
