//! A deliberately small HTTP/1.1 server side: request parsing and response
//! writing over any `Read`/`Write`.
//!
//! It is hand-written (rather than built on a framework) because the reference
//! server must be able to misbehave at the byte level: lie about
//! Content-Length, stop mid-body, reset the connection, or frame a reply by
//! closing the stream. Everything here is plain blocking I/O.

use std::io::{self, BufRead, Write};

/// Upper bound for the request line plus headers; a device never sends more.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Upper bound for a request body (ACCOUNT tgz uploads and photos stay far below).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection closed before a request started")]
    Closed,
    #[error("i/o error while reading a request: {0}")]
    Io(#[from] io::Error),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path without the query string (absolute-form targets are reduced to
    /// their path, as UPGRADE method 3 may send `GET http://host/file`).
    pub path: String,
    /// Query pairs in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Raw query string as sent.
    pub raw_query: String,
    pub version: String,
    /// Header pairs in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// First query value with this name (exact, then case-insensitive match).
    pub fn query_value(&self, name: &str) -> Option<&str> {
        query_get(&self.query, name)
    }

    /// Whether the client asked to keep the connection open after this request.
    pub fn wants_keep_alive(&self) -> bool {
        match self.header("connection") {
            Some(v) if v.eq_ignore_ascii_case("close") => false,
            // Devices send `Connection: starting`, which is not a token HTTP
            // knows; HTTP/1.1 defaults to keep-alive, so treat it like that.
            Some(v) if v.eq_ignore_ascii_case("keep-alive") => true,
            _ => self.version != "HTTP/1.0",
        }
    }
}

/// Exact then case-insensitive lookup in an ordered list of pairs.
pub fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.as_str())
}

/// Reads one request from `reader`. `Err(Closed)` means the peer closed the
/// connection cleanly between requests.
pub fn read_request<R: BufRead>(reader: &mut R) -> Result<Request, HttpError> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            if head.is_empty() {
                return Err(HttpError::Closed);
            }
            return Err(HttpError::Malformed(
                "stream ended inside the header".into(),
            ));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HttpError::Malformed("header too large".into()));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Tolerate stray empty lines between keep-alive requests (RFC 9112 2.2).
                head.clear();
                continue;
            }
            break;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) => (m.to_string(), t.to_string(), v.to_string()),
        // UPGRADE method 3 in the spec shows `GET http://host/file` without a version.
        (Some(m), Some(t), None) => (m.to_string(), t.to_string(), "HTTP/1.0".to_string()),
        _ => {
            return Err(HttpError::Malformed(format!(
                "bad request line {request_line:?}"
            )))
        }
    };
    let mut headers = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
            None => return Err(HttpError::Malformed(format!("bad header line {line:?}"))),
        }
    }
    let (path, raw_query) = split_target(&target);
    let mut req = Request {
        method,
        path,
        query: parse_query(&raw_query),
        raw_query,
        version,
        headers,
        body: Vec::new(),
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(reader)?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| HttpError::Malformed(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY_BYTES {
            return Err(HttpError::Malformed(format!(
                "body of {len} bytes too large"
            )));
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(req)
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(HttpError::Malformed(
                "stream ended inside chunked body".into(),
            ));
        }
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text.trim(), 16)
            .map_err(|_| HttpError::Malformed(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Skip trailers up to the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(HttpError::Malformed("chunked body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}

/// Splits a request target into a path and a raw query; absolute-form
/// (`http://host:port/path?q`) is reduced to its path.
fn split_target(target: &str) -> (String, String) {
    let mut rest = target;
    // Only a target that starts with a scheme is absolute-form: a query may
    // carry a URL (`/iclock/file?url=http://...`).
    if !rest.starts_with('/') {
        if let Some(pos) = rest.find("://") {
            let after = &rest[pos + 3..];
            rest = after.find('/').map_or("/", |i| &after[i..]);
        }
    }
    match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

/// Parses `a=1&b=2`, percent-decoding keys and values. `+` stays `+`: serial
/// numbers and URLs are not form-encoded by devices.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// `Content-Length`, connection kept alive (the normal case).
    #[default]
    ContentLength,
    /// `Connection: close`, no Content-Length; the body ends with the stream.
    CloseDelimited,
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Standard reason phrase for the statuses this server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        406 => "Not Acceptable",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// What to do with the body while writing it (used by faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCut {
    /// Write it all.
    Whole,
    /// Announce the full length but write only this many body bytes.
    After(usize),
}

/// Writes the status line and headers, then the body according to `framing`
/// and `cut`. Returns whether the body was written completely.
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    framing: Framing,
    keep_alive: bool,
    cut: BodyCut,
) -> io::Result<bool> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match framing {
        Framing::ContentLength => {
            head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
            if !keep_alive {
                head.push_str("Connection: close\r\n");
            }
        }
        Framing::CloseDelimited => head.push_str("Connection: close\r\n"),
        Framing::Chunked => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            if !keep_alive {
                head.push_str("Connection: close\r\n");
            }
        }
    }
    head.push_str("\r\n");
    let limit = match cut {
        BodyCut::Whole => resp.body.len(),
        BodyCut::After(n) => n.min(resp.body.len()),
    };
    let body = &resp.body[..limit];
    let mut out = head.into_bytes();
    match framing {
        Framing::Chunked => {
            // Two chunks when possible, so clients really have to reassemble.
            let mid = body.len() / 2;
            for part in [&body[..mid], &body[mid..]] {
                if !part.is_empty() {
                    out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    out.extend_from_slice(part);
                    out.extend_from_slice(b"\r\n");
                }
            }
            if limit == resp.body.len() {
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        _ => out.extend_from_slice(body),
    }
    w.write_all(&out)?;
    w.flush()?;
    Ok(limit == resp.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn parse(raw: &[u8]) -> Result<Request, HttpError> {
        read_request(&mut BufReader::new(raw))
    }

    #[test]
    fn parses_request_line_headers_and_length_body() {
        let req = parse(
            b"POST /iclock/cdata?SN=A1&table=rtlog HTTP/1.1\r\nHost: x\r\ncookie: token=ab\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
        )
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/iclock/cdata");
        assert_eq!(req.query_value("sn"), Some("A1"));
        assert_eq!(req.query_value("table"), Some("rtlog"));
        assert_eq!(req.header("COOKIE"), Some("token=ab"));
        assert_eq!(req.body, b"hello");
    }

    #[test]
    fn parses_chunked_body() {
        let req =
            parse(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(req.body, b"abcde");
    }

    #[test]
    fn absolute_form_and_percent_decoding() {
        let req = parse(b"GET http://h:89/data/emfw.cfg HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(req.path, "/data/emfw.cfg");
        let req =
            parse(b"GET /iclock/file?SN=1&url=http%3A%2F%2Fh%2Fa%20b HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(req.query_value("url"), Some("http://h/a b"));
        let req = parse(b"GET /iclock/file?SN=1&url=http://fw.example/x/emfw.cfg HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(req.path, "/iclock/file");
        assert_eq!(req.query_value("url"), Some("http://fw.example/x/emfw.cfg"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn clean_close_and_truncated_head() {
        assert!(matches!(parse(b""), Err(HttpError::Closed)));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            Err(HttpError::Io(_))
        ));
    }

    #[test]
    fn writes_each_framing() {
        let resp = Response::new(200, "OK");
        let mut out = Vec::new();
        write_response(
            &mut out,
            &resp,
            Framing::ContentLength,
            true,
            BodyCut::Whole,
        )
        .unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 2\r\n\r\nOK"));
        let mut out = Vec::new();
        write_response(&mut out, &resp, Framing::Chunked, true, BodyCut::Whole).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\r\n\r\n1\r\nO\r\n1\r\nK\r\n0\r\n\r\n"));
        let mut out = Vec::new();
        write_response(
            &mut out,
            &resp,
            Framing::CloseDelimited,
            true,
            BodyCut::Whole,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Connection: close") && !text.contains("Content-Length"));
        let mut out = Vec::new();
        let whole = write_response(
            &mut out,
            &Response::new(200, "abcdef"),
            Framing::ContentLength,
            true,
            BodyCut::After(2),
        )
        .unwrap();
        assert!(!whole);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 6\r\n\r\nab"));
    }
}
