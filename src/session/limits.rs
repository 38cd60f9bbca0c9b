//! How much of an answer the device reads, by what the answer is: the one
//! table every exchange with the server goes through.
//!
//! The limits count body bytes after gzip decoding (ureq's body limit sits
//! on the decoded stream), so a compressed bomb stops inflating at the
//! limit. They apply at the link, below anything that would wrap bodies
//! (an encryption layer sits above [`super::link::Connection`] and sees at
//! most this much ciphertext). Downloads are bounded by what their caller
//! allows instead ([`super::link::ServerLink::download`]).

use super::transport::Method;

/// Upload acknowledgements (`OK`, `OK: N`, `<table>=N`), command-result,
/// ping and options answers: a few bytes by the spec; an HTML error page of
/// a deployed server still fits.
pub const ACK_BYTES: u64 = 32 * 1024;

/// Configuration answers (the init `registry=ok` block, registry, push):
/// some tens of `key=value` lines.
pub const CONFIG_BYTES: u64 = 64 * 1024;

/// A getrequest answer: one DATA command may carry 4 MB (Appendix 1, -106)
/// and a few command lines around it.
pub const COMMANDS_BYTES: u64 = crate::commands::data::MAX_COMMAND_BYTES as u64 + 192 * 1024;

// The largest DATA command fits a getrequest answer, and the bound stays
// well under the device's memory target (32 MB peak RSS).
const _: () = assert!(
    COMMANDS_BYTES > crate::commands::data::MAX_COMMAND_BYTES as u64 + 64 * 1024
        && COMMANDS_BYTES < 8 * 1024 * 1024
);

/// Non-2xx answers are read only this far: their status is what counts, and
/// the start of an error page is enough for a log line.
pub const ERROR_PAGE_BYTES: u64 = 4 * 1024;

/// The most the device reads of the answer to `method path_and_query`.
/// Anything not named here is an acknowledgement, the smallest class.
pub fn answer_limit(method: Method, path_and_query: &str) -> u64 {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    match (method, path) {
        (_, "/iclock/getrequest") => COMMANDS_BYTES,
        (_, "/iclock/registry" | "/iclock/push") => CONFIG_BYTES,
        // The init request `GET /iclock/cdata?options=all` (7.1); POSTs to
        // cdata are uploads and get acknowledgements.
        (Method::Get, "/iclock/cdata") => CONFIG_BYTES,
        _ => ACK_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exchange_has_the_limit_of_what_it_answers() {
        assert_eq!(
            answer_limit(Method::Get, "/iclock/getrequest?SN=1"),
            COMMANDS_BYTES
        );
        assert_eq!(
            answer_limit(Method::Get, "/iclock/cdata?SN=1&options=all"),
            CONFIG_BYTES
        );
        assert_eq!(
            answer_limit(Method::Post, "/iclock/registry?SN=1"),
            CONFIG_BYTES
        );
        assert_eq!(
            answer_limit(Method::Post, "/iclock/push?SN=1"),
            CONFIG_BYTES
        );
        for upload in [
            "/iclock/cdata?SN=1&table=rtlog",
            "/iclock/devicecmd?SN=1",
            "/iclock/querydata?SN=1&type=tabledata",
        ] {
            assert_eq!(answer_limit(Method::Post, upload), ACK_BYTES, "{upload}");
        }
        assert_eq!(answer_limit(Method::Get, "/iclock/ping?SN=1"), ACK_BYTES);
    }
}
