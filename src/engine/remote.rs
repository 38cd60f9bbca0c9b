//! Remote identification (section 13, device option `AutoServerFunOn`):
//! a locally granted identification is sent to the server, which answers
//! `AUTH=SUCCESS|FAILED|TIMEOUT` and may add a CONTROL DEVICE line.
//!
//! The engine never waits for it: each request runs on its own short-lived
//! thread ([`super::Engine`] spawns it) and answers through the engine
//! channel; the engine keeps a deadline of [`REMOTE_TIMEOUT`] and falls
//! back to its local decision when no answer came by then (event 45).

use crate::session::transport::{HttpRequest, Method, Transport, UreqTransport};
use std::time::Duration;

/// How long a person waits for the server before the local decision holds.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(3);

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteVerdict {
    /// Open; `control` is the CONTROL DEVICE argument the server added.
    Success {
        control: Option<String>,
    },
    Failed,
    /// The server itself gave up (`AUTH=TIMEOUT`).
    Timeout,
}

/// Asks the server about one identification. Implementations may block up
/// to `timeout`; they run on a thread of their own.
pub trait RemoteIdentifier: Send + Sync {
    fn identify(
        &self,
        record: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<RemoteVerdict, String>;
}

/// Reads a section 13 answer body.
pub fn parse_answer(body: &str) -> Result<RemoteVerdict, String> {
    let mut auth = None;
    let mut control = None;
    for line in body.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("AUTH=") {
            auth = Some(v.trim().to_ascii_uppercase());
        } else if let Some(arg) = line.strip_prefix("CONTROL DEVICE") {
            control = Some(arg.trim().to_string());
        }
    }
    match auth.as_deref() {
        Some("SUCCESS") => Ok(RemoteVerdict::Success { control }),
        Some("FAILED") => Ok(RemoteVerdict::Failed),
        Some("TIMEOUT") => Ok(RemoteVerdict::Timeout),
        Some(other) => Err(format!("unknown AUTH value {other:?}")),
        None => Err("the answer has no AUTH line".into()),
    }
}

/// Section 13 over HTTP: `POST /iclock/cdata?SN=…&AuthType=device`.
pub struct HttpRemote {
    base: String,
    serial: String,
    /// What HTTPS trusts (as the session's transport).
    tls: crate::session::tls::TlsSettings,
    /// The session's encrypted channel: a record carries a PIN and a card,
    /// so it is sealed whenever the session's bodies are.
    sealed: Option<(
        crate::crypto::EncryptionPolicy,
        crate::session::sealed::SharedChannel,
    )>,
}

impl HttpRemote {
    pub fn new(base_url: &str, serial: &str, tls: crate::session::tls::TlsSettings) -> HttpRemote {
        HttpRemote {
            base: base_url.trim().trim_end_matches('/').to_string(),
            serial: serial.to_string(),
            tls,
            sealed: None,
        }
    }

    /// Seals requests under the session's channel while it is up; with
    /// `required`, sends nothing without one (the local decision holds).
    pub fn sealed_by(
        mut self,
        policy: crate::crypto::EncryptionPolicy,
        channel: crate::session::sealed::SharedChannel,
    ) -> HttpRemote {
        self.sealed = Some((policy, channel));
        self
    }
}

impl RemoteIdentifier for HttpRemote {
    fn identify(
        &self,
        record: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<RemoteVerdict, String> {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/push;charset=UTF-8".to_string(),
        )];
        if let Some(t) = token {
            headers.push(("Cookie".to_string(), format!("token={t}")));
        }
        let request = HttpRequest {
            method: Method::Post,
            url: format!(
                "{}/iclock/cdata?SN={}&AuthType=device",
                self.base, self.serial
            ),
            headers,
            body: record.as_bytes().to_vec(),
            // Section 13's answer: an AUTH line, a record, a command.
            max_body: crate::session::limits::ACK_BYTES,
        };
        // A transport of its own: requests of different doors do not queue.
        let plain: Box<dyn Transport> = Box::new(UreqTransport::with_tls(&self.tls));
        let mut transport: Box<dyn Transport> = match &self.sealed {
            None => plain,
            Some((policy, channel)) => {
                let up = channel.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                if !up && *policy == crate::crypto::EncryptionPolicy::Required {
                    return Err("not sent: encryption is required and no channel is up".into());
                }
                // The channel's lock is held for the whole exchange, so the
                // counters stay in step with the session's requests.
                Box::new(crate::session::sealed::SealingTransport::new(
                    plain,
                    channel.clone(),
                ))
            }
        };
        let reply = transport
            .send(&request, timeout, None)
            .map_err(|e| e.to_string())?;
        if !reply.is_success() {
            return Err(format!("HTTP {}", reply.status));
        }
        parse_answer(&reply.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_section_13() {
        let body = "AUTH=SUCCESS\r\ntime=2024-05-06 09:00:00\tpin=1\tcardno=4660\taddrtype=2\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=4\r\nCONTROL DEVICE 0101010A\r\n";
        assert_eq!(
            parse_answer(body),
            Ok(RemoteVerdict::Success {
                control: Some("0101010A".into())
            })
        );
        assert_eq!(parse_answer("AUTH=FAILED\r\n"), Ok(RemoteVerdict::Failed));
        assert_eq!(parse_answer("AUTH=timeout"), Ok(RemoteVerdict::Timeout));
        assert!(parse_answer("OK").is_err());
        assert!(parse_answer("AUTH=MAYBE").is_err());
    }
}
