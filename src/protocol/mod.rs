//! Sans-IO codec of the Security PUSH protocol 3.1.2: text in, typed values out;
//! typed values in, text out. Nothing here touches a socket, a file or a clock.

pub mod codes;
pub mod command;
pub mod kv;
pub mod record;
pub mod redact;
pub mod time;
pub mod token;
pub mod upload;

pub use command::{parse_getrequest, CommandLine, CommandParseIssue, ParseIssues};
pub use record::Record;
pub use token::token;

/// The protocol version this firmware implements (Appendix 13).
pub const DEVICE_PUSH_VERSION: ProtocolVersion = ProtocolVersion::new(3, 1, 2);

/// A published protocol version such as `3.1.2` (Appendix 13). Ordered, so the
/// lower of the device's and the server's versions can be taken with `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl ProtocolVersion {
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The version a server is assumed to speak when it names none (Appendix 13).
    pub const DEFAULT_SERVER: ProtocolVersion = ProtocolVersion::new(3, 0, 1);

    /// Parses `3.1.2`, tolerating a `Ver ` prefix and a `-date` suffix
    /// (`Ver 2.0.22-20161201`) as servers send them. Missing parts count as 0.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let t = t
            .strip_prefix("Ver ")
            .or_else(|| t.strip_prefix("ver "))
            .unwrap_or(t);
        let t = t.split('-').next().unwrap_or(t).trim();
        let mut parts = t.split('.');
        let major = parts.next()?.trim().parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.trim().parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.trim().parse().ok())?;
        Some(Self::new(major, minor, patch))
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Splits a body into lines the way deployed servers need: on LF, with CR
/// stripped and empty lines skipped (interop.md, "Framing").
pub fn lines(body: &str) -> impl Iterator<Item = &str> {
    body.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
}

/// Decodes a body whose charset we do not trust: UTF-8 when valid, otherwise
/// GB18030 (a superset of the GB2312 the spec names for Chinese text).
pub fn decode_body(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            ProtocolVersion::parse("3.1.2"),
            Some(ProtocolVersion::new(3, 1, 2))
        );
        assert_eq!(
            ProtocolVersion::parse("Ver 2.0.22-20161201"),
            Some(ProtocolVersion::new(2, 0, 22))
        );
        assert_eq!(
            ProtocolVersion::parse("3.1"),
            Some(ProtocolVersion::new(3, 1, 0))
        );
        assert_eq!(ProtocolVersion::parse("abc"), None);
        assert!(ProtocolVersion::new(3, 0, 1) < ProtocolVersion::new(3, 1, 2));
    }

    #[test]
    fn lines_tolerate_every_line_ending() {
        let body = "a\r\nb\n\r\n\nc";
        assert_eq!(lines(body).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[test]
    fn non_utf8_bodies_decode_as_gb18030() {
        // "张" in GB2312 is D5 C5.
        assert_eq!(decode_body(&[0xD5, 0xC5]), "张");
        assert_eq!(decode_body("plain".as_bytes()), "plain");
    }
}
