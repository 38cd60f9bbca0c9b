//! Encrypted PUSH on the session's transport (docs/encrypted-push.md).
//!
//! [`SealingTransport`] wraps the HTTP transport: while a channel is
//! established it seals every request body and opens every 2xx answer
//! body, and nothing else in the session changes. [`Encryption`] runs the
//! exchange of 7.2 and 7.3 after the init request of every connection and
//! decides Appendix 16's Case 1 (plain) or Case 2 (encrypted).

use super::link::Connection;
use super::transport::{HttpReply, HttpRequest, Method, Transport, TransportError};
use super::SessionError;
use crate::crypto::{self, Channel, EncryptionPolicy, Handshake, KeySource, KeyState};
use crate::protocol::ProtocolVersion;
use std::io::Write;
use std::sync::{Arc, Mutex};

use std::time::Duration;

/// The channel shared by the transport wrapper and the session that
/// establishes and drops it. Only the session thread uses either.
pub type SharedChannel = Arc<Mutex<Option<Channel>>>;

/// Content type of a sealed body (it is binary).
pub const SEALED_CONTENT_TYPE: &str = "application/octet-stream";

/// The path and query of an absolute URL: what the request line carries
/// and the sealed body is bound to.
pub fn request_target(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
    }
}

/// Seals request bodies and opens answer bodies while a channel is up.
pub struct SealingTransport {
    inner: Box<dyn Transport>,
    channel: SharedChannel,
}

impl SealingTransport {
    pub fn new(inner: Box<dyn Transport>, channel: SharedChannel) -> Self {
        SealingTransport { inner, channel }
    }
}

impl Transport for SealingTransport {
    fn send(
        &mut self,
        request: &HttpRequest,
        timeout: Duration,
        sink: Option<&mut dyn Write>,
    ) -> Result<HttpReply, TransportError> {
        let mut guard = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        // Downloads stream into a file: their integrity is the package's
        // checksum and signature, carried by the sealed command
        // (docs/encrypted-push.md, "What is not sealed").
        let Some(channel) = guard.as_mut().filter(|_| sink.is_none()) else {
            drop(guard);
            return self.inner.send(request, timeout, sink);
        };
        let method = method_name(request.method);
        let target = request_target(&request.url).to_owned();
        let rejected = |source| TransportError::Sealed {
            url: request.url.clone(),
            source,
        };
        // The limit is the plain body's; the sealed one carries the
        // channel's overhead on top.
        let max_body = request
            .max_body
            .saturating_add(crate::crypto::channel::OVERHEAD as u64);
        let sealed_request;
        let outgoing = if request.method == Method::Post {
            let body = channel
                .seal_request(method, &target, &request.body)
                .map_err(rejected)?;
            let mut headers: Vec<(String, String)> = request
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("Content-Type"))
                .cloned()
                .collect();
            headers.push(("Content-Type".into(), SEALED_CONTENT_TYPE.into()));
            sealed_request = HttpRequest {
                method: request.method,
                url: request.url.clone(),
                headers,
                body,
                max_body,
            };
            &sealed_request
        } else {
            sealed_request = HttpRequest {
                max_body,
                ..request.clone()
            };
            &sealed_request
        };
        let mut reply = self.inner.send(outgoing, timeout, None)?;
        if !reply.is_success() {
            // Error answers are never sealed; the session acts on their
            // status only.
            return Ok(reply);
        }
        match channel.open_response_in_place(method, &target, &mut reply.body) {
            Ok(()) => Ok(reply),
            Err(source) => {
                // Nothing more goes out under a key that saw a bad body.
                *guard = None;
                Err(rejected(source))
            }
        }
    }
}

/// Whether the connection being made is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelMode {
    Plain,
    Encrypted,
}

/// The session's encryption settings and state.
pub struct Encryption {
    pub policy: EncryptionPolicy,
    keys: Arc<dyn KeySource>,
    channel: SharedChannel,
    /// This connection went plain only because the device key was not
    /// ready: reconnect once it is.
    waiting_for_key: bool,
}

impl Encryption {
    pub fn new(
        policy: EncryptionPolicy,
        keys: Arc<dyn KeySource>,
        channel: SharedChannel,
    ) -> Encryption {
        Encryption {
            policy,
            keys,
            channel,
            waiting_for_key: false,
        }
    }

    pub fn set_key_source(&mut self, keys: Arc<dyn KeySource>) {
        self.keys = keys;
    }

    /// The handle the [`SealingTransport`] seals with.
    pub fn channel(&self) -> SharedChannel {
        self.channel.clone()
    }

    /// Ends the channel: the next init request goes out plain.
    pub fn drop_channel(&mut self) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// True once, when a connection that went plain for want of the
    /// device key can now be made again encrypted.
    pub fn key_became_ready(&mut self) -> bool {
        if self.waiting_for_key && matches!(self.keys.device_key(), KeyState::Ready(_)) {
            self.waiting_for_key = false;
            return true;
        }
        false
    }

    /// Plain text where the policy allows it, else the refusal.
    fn plain(&self, url: &str, why: String) -> Result<ChannelMode, SessionError> {
        if self.policy == EncryptionPolicy::Required {
            return Err(SessionError::EncryptionRequired(why));
        }
        log::info!("plain-text PUSH with {url}: {why}");
        Ok(ChannelMode::Plain)
    }

    /// 7.2 and 7.3 after the init request: establishes the channel, or
    /// decides plain text (Appendix 16 Case 1), or refuses.
    pub fn establish(
        &mut self,
        conn: &mut Connection,
        serial: &str,
        url: &str,
        announced: Option<ProtocolVersion>,
    ) -> Result<ChannelMode, SessionError> {
        self.drop_channel();
        self.waiting_for_key = false;
        if !crypto::should_exchange(self.policy, announced) {
            if self.policy == EncryptionPolicy::Off {
                return Ok(ChannelMode::Plain);
            }
            let version = announced.unwrap_or(ProtocolVersion::DEFAULT_SERVER);
            return self.plain(
                url,
                format!(
                    "the server speaks protocol {version}, below {} which encrypts",
                    crypto::ENCRYPTING_VERSION
                ),
            );
        }
        let key = match self.keys.device_key() {
            KeyState::Ready(key) => key,
            KeyState::Generating => {
                self.waiting_for_key = self.policy == EncryptionPolicy::Auto;
                return self.plain(
                    url,
                    "the device key is still being generated (first start)".into(),
                );
            }
            KeyState::Failed(why) => {
                return self.plain(url, format!("there is no device key ({why})"));
            }
        };
        let handshake = Handshake::new(key, serial);
        let pq = format!("/iclock/exchange?SN={serial}&type=publickey");
        let reply = conn.request(Method::Post, &pq, handshake.public_key_body().as_bytes())?;
        let answered =
            reply.is_success() && crypto::exchange::field(&reply.text(), "PublicKey").is_some();
        if !answered {
            // 404 and friends: a server that has no exchange (Case 1). A
            // 401, 406 or 5xx is a failure like at any other endpoint.
            if reply.is_success() || matches!(reply.status, 400 | 404 | 405 | 501) {
                return self.plain(
                    url,
                    format!(
                        "the server does not answer /iclock/exchange ({})",
                        reply.status
                    ),
                );
            }
            return Err(SessionError::Status {
                status: reply.status,
                endpoint: "/iclock/exchange".into(),
            });
        }
        // From here the server has claimed the exchange: any failure is an
        // error and a reconnection, never a silent fall back to plain text.
        let exchange_error = |source| SessionError::Exchange { source };
        let (waiting, factors) = handshake
            .on_public_key(&reply.text(), &mut rsa::rand_core::OsRng)
            .map_err(exchange_error)?;
        let pq = format!("/iclock/exchange?SN={serial}&type=factors");
        let reply = conn.request(Method::Post, &pq, factors.as_bytes())?;
        if !reply.is_success() {
            return Err(SessionError::Status {
                status: reply.status,
                endpoint: "/iclock/exchange?type=factors".into(),
            });
        }
        let channel = waiting.on_factors(&reply.text()).map_err(exchange_error)?;
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel);
        log::info!("encrypted PUSH with {url} established (RSA-OAEP exchange, AES-256-GCM bodies)");
        Ok(ChannelMode::Encrypted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::channel::{Direction, Opener, Sealer};

    /// A server in memory: opens sealed requests with the device's keys
    /// and answers `OK`, sealed or (a faulty one) plain.
    struct FakeServer {
        from_device: Opener,
        to_device: Sealer,
        answer_plain: bool,
    }

    impl Transport for FakeServer {
        fn send(
            &mut self,
            request: &HttpRequest,
            _timeout: Duration,
            sink: Option<&mut dyn Write>,
        ) -> Result<HttpReply, TransportError> {
            let method = method_name(request.method);
            let target = request_target(&request.url);
            if let Some(sink) = sink {
                sink.write_all(b"file").unwrap();
                return Ok(HttpReply {
                    status: 200,
                    ..HttpReply::default()
                });
            }
            if request.method == Method::Post {
                let body = self
                    .from_device
                    .open(Direction::DeviceToServer, method, target, &request.body)
                    .unwrap();
                assert_eq!(body, b"ID=1&Return=0");
                let ct = request.headers.iter().find(|(k, _)| k == "Content-Type");
                assert_eq!(ct.unwrap().1, SEALED_CONTENT_TYPE);
            }
            let answer = if self.answer_plain {
                b"OK".to_vec()
            } else {
                self.to_device
                    .seal(Direction::ServerToDevice, method, target, b"OK")
                    .unwrap()
            };
            Ok(HttpReply {
                status: 200,
                headers: Vec::new(),
                body: answer,
            })
        }
    }

    #[test]
    fn bodies_are_sealed_downloads_pass_and_a_plain_answer_ends_the_channel() {
        let (d2s, s2d) = ([1u8; 32], [2u8; 32]);
        let channel: SharedChannel = Arc::new(Mutex::new(Some(Channel::new(&d2s, &s2d))));
        let server = FakeServer {
            from_device: Opener::new(&d2s),
            to_device: Sealer::new(&s2d),
            answer_plain: false,
        };
        let mut t = SealingTransport::new(Box::new(server), channel.clone());
        let post = HttpRequest {
            method: Method::Post,
            url: "http://h/iclock/devicecmd?SN=1".into(),
            headers: vec![("Content-Type".into(), "application/push".into())],
            body: b"ID=1&Return=0".to_vec(),
            max_body: 1024,
        };
        let reply = t.send(&post, Duration::from_secs(1), None).unwrap();
        assert_eq!(reply.body, b"OK");
        let get = HttpRequest {
            method: Method::Get,
            url: "http://h/iclock/getrequest?SN=1".into(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body: 1024,
        };
        assert_eq!(
            t.send(&get, Duration::from_secs(1), None).unwrap().body,
            b"OK"
        );
        let mut file = Vec::new();
        t.send(&get, Duration::from_secs(1), Some(&mut file))
            .unwrap();
        assert_eq!(file, b"file");
        assert_eq!(channel.lock().unwrap().as_ref().unwrap().counters(), (1, 2));

        // A server that answers in plain text while the channel is up.
        let server = FakeServer {
            from_device: Opener::new(&d2s),
            to_device: Sealer::new(&s2d),
            answer_plain: true,
        };
        *channel.lock().unwrap() = Some(Channel::new(&d2s, &s2d));
        let mut t = SealingTransport::new(Box::new(server), channel.clone());
        let e = t.send(&get, Duration::from_secs(1), None).unwrap_err();
        assert!(matches!(e, TransportError::Sealed { .. }), "{e}");
        assert!(channel.lock().unwrap().is_none());
        // Without a channel, bodies go as they are.
        assert!(t.send(&get, Duration::from_secs(1), None).is_ok());
    }

    #[test]
    fn request_targets_are_the_path_and_query() {
        assert_eq!(
            request_target("http://h:8088/iclock/cdata?SN=1&table=rtlog"),
            "/iclock/cdata?SN=1&table=rtlog"
        );
        assert_eq!(request_target("https://h"), "/");
        assert_eq!(request_target("/iclock/ping?SN=1"), "/iclock/ping?SN=1");
    }
}
