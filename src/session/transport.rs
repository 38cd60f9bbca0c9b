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
    /// The most body bytes read of the answer, counted after decoding
    /// (see [`super::limits`]): more is an error for a 2xx answer and is
    /// cut off for any other. Also bounds what a sink receives.
    pub max_body: u64,
}

pub use crate::link::{HttpReply, TransportError};

/// Sends one request and returns the answer, whatever its status. Redirects
/// are not followed: they are answers like any other (the link decides
/// where the device may go, see [`super::origin`]).
pub trait Transport: Send {
    /// `sink`: stream a 2xx body there instead of buffering it (downloads);
    /// the body of any other status is buffered (bounded), never streamed,
    /// so an error page or a redirect never becomes downloaded content.
    fn send(
        &mut self,
        request: &HttpRequest,
        timeout: Duration,
        sink: Option<&mut dyn Write>,
    ) -> Result<HttpReply, TransportError>;
}

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
        Self::with_tls(&super::tls::TlsSettings::with_ca_file(ca_file))
    }

    /// A transport that trusts the roots of `tls.ca_file` and, with a pin,
    /// only the server key it names.
    pub fn with_tls(tls: &super::tls::TlsSettings) -> Self {
        use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
        let roots = if tls.ca_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            load_root_certs(&tls.ca_file)
        };
        // Our own TLS connector (session/tls.rs): ureq's TlsConfig cannot
        // take the pinning verifier.
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(super::tls::TlsConnector {
                    config: super::tls::client_config(&roots, tls.pin_sha256),
                });
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The device sends exactly the headers the protocol needs.
            .user_agent(ureq::config::AutoHeaderValue::None)
            // A redirect goes back to the link, which follows it only to
            // the server's origin or an allowed host (ureq would follow it
            // anywhere, and take the answer's `Date` and body from there).
            .max_redirects(0)
            .max_idle_connections_per_host(2)
            .build();
        let names = ResolverCache::default();
        let agent = ureq::Agent::with_parts(config, connector, CachingResolver::new(names.clone()));
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
        ureq::Error::Rustls(rustls::Error::InvalidCertificate(why)) => {
            TransportError::Certificate {
                url: url.to_owned(),
                message: match why {
                    rustls::CertificateError::Other(other) => other.to_string(),
                    rustls::CertificateError::UnknownIssuer => {
                        "its certificate is not signed by a trusted CA".into()
                    }
                    other => format!("its certificate is invalid ({other:?})"),
                },
            }
        }
        ureq::Error::Tls(why) => TransportError::Certificate {
            url: url.to_owned(),
            message: why.to_owned(),
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
        let body = read_body(&mut response, url, status, request.max_body, sink)?;
        Ok(HttpReply {
            status,
            headers,
            body,
        })
    }
}

/// Reads the answer's body, at most `limit` bytes after decoding: a 2xx body
/// into `sink` when there is one, else into memory; a longer 2xx body is an
/// error, any other is cut (its status is what counts).
fn read_body(
    response: &mut ureq::http::Response<ureq::Body>,
    url: &str,
    status: u16,
    limit: u64,
    sink: Option<&mut dyn Write>,
) -> Result<Vec<u8>, TransportError> {
    let success = (200..300).contains(&status);
    let limit = if success {
        limit
    } else {
        limit.min(super::limits::ERROR_PAGE_BYTES)
    };
    let failed = |e: std::io::Error| match ureq::Error::from(e) {
        ureq::Error::BodyExceedsLimit(limit) => TransportError::TooLarge {
            url: url.to_owned(),
            limit,
        },
        other => TransportError::Body {
            url: url.to_owned(),
            message: other.to_string(),
        },
    };
    // Only up to the limit: a Content-Length is the server's claim.
    let announced = response.body().content_length().unwrap_or(0).min(limit);
    let mut reader = response.body_mut().with_config().limit(limit).reader();
    if let (Some(sink), true) = (sink, success) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf).map_err(failed)?;
            if n == 0 {
                return Ok(Vec::new());
            }
            sink.write_all(&buf[..n]).map_err(TransportError::Sink)?;
        }
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    match std::io::Read::read_to_end(&mut reader, &mut body) {
        Ok(_) => Ok(body),
        Err(e) => match failed(e) {
            TransportError::TooLarge { .. } if !success => Ok(body),
            e => Err(e),
        },
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
