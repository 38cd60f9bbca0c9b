//! The session's authenticated channel to the server, as executors see it:
//! requests carry the token cookie and the standard headers, every answer
//! of the server's origin offers its `Date` to the device clock (whose
//! policy bounds it), answers are read only as far as [`super::limits`]
//! allows, URLs from the server go through [`super::origin`], and long work
//! can keep the heartbeat.

use super::limits::answer_limit;
use super::origin::{OriginPolicy, Resolved};
use super::transport::{HttpRequest, Method, Transport};
use crate::clock::{parse_http_date, Clock, TimeSource};
use crate::link::HttpReply;
pub use crate::link::{LinkError, OfflineLink, ServerLink};
use crate::protocol::ProtocolVersion;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redirects followed per request, each checked like a server-given URL.
const MAX_REDIRECTS: u32 = 3;

/// The session's connection state shared with executors.
pub struct Connection {
    transport: Box<dyn Transport>,
    /// The server's origin, and the hosts downloads may also come from.
    policy: OriginPolicy,
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
            policy: OriginPolicy::new(base, &[]),
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

    /// Hosts other than the server's that downloads may come from (config
    /// `[server] allowed_download_hosts`): never with the token, and never
    /// for the clock.
    pub fn set_allowed_download_hosts(&mut self, hosts: &[String]) {
        self.policy = OriginPolicy::new(self.policy.base(), hosts);
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request to the server and returns the reply whatever its
    /// status, reading as much of it as [`answer_limit`] allows.
    pub fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<HttpReply, LinkError> {
        let target = Resolved {
            url: format!("{}{}", self.policy.base(), path_and_query),
            same_origin: true,
        };
        let limit = answer_limit(method, path_and_query);
        self.send(method, target, body, &[], None, limit)
    }

    fn send(
        &mut self,
        method: Method,
        mut target: Resolved,
        body: &[u8],
        extra: &[(&str, String)],
        mut sink: Option<&mut dyn Write>,
        max_body: u64,
    ) -> Result<HttpReply, LinkError> {
        let timeout = if sink.is_some() {
            // A download may legitimately take longer than one exchange.
            self.timeout.saturating_mul(6)
        } else {
            self.timeout
        };
        let mut redirects = 0;
        loop {
            let request = self.request_to(method, &target, body, extra, max_body);
            if let Some(l) = &self.liveness {
                l.promise("session", timeout);
            }
            // A reborrow per hop; only a 2xx body reaches the sink.
            let hop_sink: Option<&mut dyn Write> = match &mut sink {
                Some(s) => Some(&mut **s),
                None => None,
            };
            let reply = self.transport.send(&request, timeout, hop_sink)?;
            if target.same_origin {
                // Only the server's own answers keep the clock: another
                // host's `Date` must not move decisions.
                if let Some(date) = reply.header("Date").and_then(parse_http_date) {
                    self.clock.offer(date, TimeSource::DateHeader);
                }
            }
            let location = reply.header("Location").filter(|_| {
                matches!(reply.status, 301 | 302 | 303 | 307 | 308) && method == Method::Get
            });
            let Some(location) = location else {
                return Ok(reply);
            };
            if redirects == MAX_REDIRECTS {
                return Ok(reply);
            }
            redirects += 1;
            // Checked like any URL from the server: to the origin (with the
            // token) or an allowed host (without), nowhere else.
            target = self
                .policy
                .resolve_redirect(&target.url, location)
                .inspect_err(|e| log::warn!("{}: redirect not followed: {e}", target.url))?;
            log::debug!("following a redirect to {}", target.url);
        }
    }

    /// The request with the standard headers; the token only for the origin.
    fn request_to(
        &self,
        method: Method,
        target: &Resolved,
        body: &[u8],
        extra: &[(&str, String)],
        max_body: u64,
    ) -> HttpRequest {
        let mut headers = vec![
            ("Accept".to_owned(), "application/push".to_owned()),
            ("Accept-Charset".to_owned(), "UTF-8".to_owned()),
            ("Accept-Language".to_owned(), "en-US".to_owned()),
        ];
        if let (Some(token), true) = (&self.token, target.same_origin) {
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
        HttpRequest {
            method,
            url: target.url.clone(),
            headers,
            body: body.to_vec(),
            max_body,
        }
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
        max_bytes: u64,
        sink: &mut dyn Write,
    ) -> Result<HttpReply, LinkError> {
        let target = self
            .policy
            .resolve(url)
            .inspect_err(|e| log::warn!("download not started: {e}"))?;
        self.send(Method::Get, target, b"", headers, Some(sink), max_bytes)
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
        self.policy.base()
    }
}
