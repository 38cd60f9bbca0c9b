//! The thin HTTP layer under the session: a small object-safe trait, one
//! ureq implementation with explicit timeouts, and nothing protocol-specific.

use super::resolve::{CachingResolver, ResolverCache};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Empty when the body was streamed into a sink.
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; charset headers are not trusted (interop.md).
    pub fn text(&self) -> String {
        crate::protocol::decode_body(&self.body)
    }

    /// The body as text, without copying it when it is UTF-8.
    pub fn into_text(self) -> String {
        match String::from_utf8(self.body) {
            Ok(s) => s,
            Err(e) => crate::protocol::decode_body(e.as_bytes()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connection to {url} failed: {message}")]
    Connect { url: String, message: String },
    #[error("{url} timed out: {message}")]
    Timeout { url: String, message: String },
    #[error("reading the answer of {url} failed: {message}")]
    Body { url: String, message: String },
    #[error("answer of {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("writing the downloaded body failed: {0}")]
    Sink(std::io::Error),
    #[error("bad URL {0}")]
    BadUrl(String),
}

/// Sends one request and returns the answer, whatever its status.
pub trait Transport: Send {
    /// `sink`: stream the body there instead of buffering it (downloads).
    fn send(
        &mut self,
        request: &HttpRequest,
        timeout: Duration,
        sink: Option<&mut dyn Write>,
    ) -> Result<HttpReply, TransportError>;
}

/// Largest buffered answer. Command batches with photos stay far below.
pub const MAX_BUFFERED_BODY: u64 = 32 * 1024 * 1024;

/// The real transport: one ureq agent, HTTP statuses returned as values.
pub struct UreqTransport {
    agent: ureq::Agent,
    user_agent: String,
    /// The server's resolved address, forgotten when a connection fails.
    names: ResolverCache,
}

/// Where Debian and most embedded distributions keep the system CA bundle.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Reads PEM root certificates. A missing or unreadable bundle gives an
/// empty set: plain HTTP still works, HTTPS fails with a certificate error
/// that the log line below explains.
pub fn load_root_certs(path: &std::path::Path) -> Vec<ureq::tls::Certificate<'static>> {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            log::warn!(
                "CA bundle {}: {e}; HTTPS servers cannot be verified (set server.ca_file)",
                path.display()
            );
            return Vec::new();
        }
    };
    ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

impl UreqTransport {
    /// A transport that trusts the system CA bundle.
    pub fn new() -> Self {
        Self::with_ca_file(std::path::Path::new(SYSTEM_CA_FILE))
    }

    /// A transport that trusts the roots in `ca_file` (PEM); an empty path
    /// trusts none, for plain-HTTP servers.
    pub fn with_ca_file(ca_file: &std::path::Path) -> Self {
        let roots = if ca_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            load_root_certs(ca_file)
        };
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // The device sends exactly the headers the protocol needs.
            .user_agent(ureq::config::AutoHeaderValue::None)
            .max_redirects(3)
            .max_idle_connections_per_host(2)
            .build();
        let names = ResolverCache::default();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            CachingResolver::new(names.clone()),
        );
        UreqTransport {
            agent,
            user_agent: format!("iClock Proxy/1.09 lintel/{}", env!("CARGO_PKG_VERSION")),
            names,
        }
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new()
    }
}

fn classify_error(url: &str, e: ureq::Error) -> TransportError {
    let message = e.to_string();
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout {
            url: url.to_owned(),
            message,
        },
        ureq::Error::BadUri(_) => TransportError::BadUrl(url.to_owned()),
        ureq::Error::BodyExceedsLimit(limit) => TransportError::TooLarge {
            url: url.to_owned(),
            limit,
        },
        _ => TransportError::Connect {
            url: url.to_owned(),
            message,
        },
    }
}

impl Transport for UreqTransport {
    fn send(
        &mut self,
        request: &HttpRequest,
        timeout: Duration,
        sink: Option<&mut dyn Write>,
    ) -> Result<HttpReply, TransportError> {
        let url = request.url.as_str();
        let result = match request.method {
            Method::Get => {
                let mut b = self
                    .agent
                    .get(url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build()
                    .header("User-Agent", &self.user_agent);
                for (k, v) in &request.headers {
                    b = b.header(k.as_str(), v.as_str());
                }
                b.call()
            }
            Method::Post => {
                let mut b = self
                    .agent
                    .post(url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build()
                    .header("User-Agent", &self.user_agent);
                for (k, v) in &request.headers {
                    b = b.header(k.as_str(), v.as_str());
                }
                b.send(&request.body[..])
            }
        };
        let mut response = result.map_err(|e| {
            let e = classify_error(url, e);
            if matches!(
                e,
                TransportError::Connect { .. } | TransportError::Timeout { .. }
            ) {
                // The server may have moved: look its name up again next time.
                self.names.forget();
            }
            e
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = match sink {
            Some(sink) => {
                let mut reader = response.body_mut().as_reader();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| {
                        TransportError::Body {
                            url: url.to_owned(),
                            message: e.to_string(),
                        }
                    })?;
                    if n == 0 {
                        break;
                    }
                    sink.write_all(&buf[..n]).map_err(TransportError::Sink)?;
                }
                Vec::new()
            }
            None => response
                .body_mut()
                .with_config()
                .limit(MAX_BUFFERED_BODY)
                .read_to_vec()
                .map_err(|e| match e {
                    ureq::Error::BodyExceedsLimit(limit) => TransportError::TooLarge {
                        url: url.to_owned(),
                        limit,
                    },
                    other => TransportError::Body {
                        url: url.to_owned(),
                        message: other.to_string(),
                    },
                })?,
        };
        Ok(HttpReply {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_certs_come_from_a_pem_bundle_and_a_missing_one_is_empty() {
        assert!(load_root_certs(std::path::Path::new("/nonexistent/ca.pem")).is_empty());
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, b"not a certificate").unwrap();
        assert!(load_root_certs(&garbage).is_empty());
        // The machine's own bundle, where it has one, yields many roots.
        let system = std::path::Path::new(SYSTEM_CA_FILE);
        if system.exists() {
            assert!(load_root_certs(system).len() > 10);
        }
    }
}
