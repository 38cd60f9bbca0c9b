//! What one HTTP exchange with the server answers, as every layer above
//! the transport sees it: the reply ([`HttpReply`]), why no reply came
//! ([`TransportError`]) and why a URL is not fetched at all
//! ([`UrlRefused`]). Data only: it never sends anything.

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
    #[error("answer of {url} is larger than {limit} bytes (after decoding); not read further")]
    TooLarge { url: String, limit: u64 },
    #[error("writing the downloaded body failed: {0}")]
    Sink(std::io::Error),
    #[error("bad URL {0}")]
    BadUrl(String),
    #[error("HTTPS with {url} refused: {message}; check server.ca_file and server.pin_sha256 (there is no fall back to HTTP)")]
    Certificate { url: String, message: String },
    #[error("encrypted PUSH with {url}: {source}")]
    Sealed {
        url: String,
        source: crate::crypto::CryptoError,
    },
}

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("{0:?} is not a usable http(s) URL")]
    Malformed(String),
    #[error("{url:?} is not on the server's origin ({origin}); name its host in [server] allowed_download_hosts to allow it")]
    ForeignOrigin { url: String, origin: String },
}
