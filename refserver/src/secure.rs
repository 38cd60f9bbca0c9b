//! Encrypted PUSH in the request flow (docs/encrypted-push.md): the
//! `/iclock/exchange` endpoint, opening sealed request bodies before the
//! protocol sees them and sealing 2xx answers after.

use std::collections::HashMap;

use rsa::RsaPublicKey;

use crate::config::{Encryption, ServerConfig};
use crate::crypto::{self, Channel, Spoil};
use crate::fault::FaultKind;
use crate::http::{Request, Response};
use crate::state::State;

/// A request body the server refused to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRejection {
    pub sn: String,
    pub path: String,
    pub reason: String,
}

/// Per-serial exchange and channel state.
#[derive(Default)]
pub(crate) struct Secure {
    pending: HashMap<String, (RsaPublicKey, Vec<u8>)>,
    channels: HashMap<String, Channel>,
    pub exchanges: HashMap<String, u32>,
    pub rejections: Vec<SealRejection>,
}

impl std::fmt::Debug for Secure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secure")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("exchanges", &self.exchanges)
            .field("rejections", &self.rejections)
            .finish()
    }
}

impl Secure {
    pub fn has_channel(&self, sn: &str) -> bool {
        self.channels.contains_key(sn)
    }
}

fn target(req: &Request) -> String {
    if req.raw_query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.raw_query)
    }
}

fn is_init(req: &Request) -> bool {
    req.method.eq_ignore_ascii_case("GET")
        && req.path == "/iclock/cdata"
        && req.query_value("options").is_some()
}

/// Downloads are never sealed: `GET /iclock/file` and paths outside `/iclock/`.
fn is_download(req: &Request) -> bool {
    req.method.eq_ignore_ascii_case("GET")
        && (req.path == "/iclock/file" || !req.path.starts_with("/iclock/"))
}

/// What opening the request gave.
pub(crate) enum Opened {
    /// Handle it as it came (plain; nothing to open).
    AsSent,
    /// Handle this plaintext body instead, and seal the answer.
    Body(Vec<u8>),
    /// Answer this refusal without handling the request.
    Refused(Response),
}

/// Opens a sealed request body of a serial with a channel.
pub(crate) fn open_request(state: &mut State, cfg: &ServerConfig, req: &Request) -> Opened {
    let Some(sn) = req.query_value("SN").map(str::to_string) else {
        return Opened::AsSent;
    };
    if is_init(req) || req.path == "/iclock/exchange" {
        // A new connection: whatever channel there was has ended.
        state.secure.channels.remove(&sn);
        return Opened::AsSent;
    }
    let Some(channel) = state.secure.channels.get_mut(&sn) else {
        if cfg.encryption == Encryption::Required && req.path.starts_with("/iclock/") {
            return Opened::Refused(Response::new(
                400,
                "this server requires encrypted PUSH: exchange keys first",
            ));
        }
        return Opened::AsSent;
    };
    if is_download(req) {
        return Opened::AsSent;
    }
    if !req.method.eq_ignore_ascii_case("POST") {
        // A GET has no body; its answer is sealed.
        return Opened::Body(Vec::new());
    }
    match channel.open(&req.method.to_ascii_uppercase(), &target(req), &req.body) {
        Ok(body) => Opened::Body(body),
        Err(reason) => {
            log::warn!("sealed body from {sn} at {} refused: {reason}", req.path);
            state.secure.channels.remove(&sn);
            state.secure.rejections.push(SealRejection {
                sn,
                path: req.path.clone(),
                reason: reason.clone(),
            });
            Opened::Refused(Response::new(400, format!("sealed body refused: {reason}")))
        }
    }
}

/// Seals a 2xx answer to a request that came over a channel.
pub(crate) fn seal_response(
    state: &mut State,
    req: &Request,
    mut resp: Response,
    fault: Option<&FaultKind>,
) -> Response {
    let Some(sn) = req.query_value("SN") else {
        return resp;
    };
    if !(200..300).contains(&resp.status) || is_download(req) {
        return resp;
    }
    let Some(channel) = state.secure.channels.get_mut(sn) else {
        return resp;
    };
    let spoil = match fault {
        Some(FaultKind::TamperSealed) => Some(Spoil::Tamper),
        Some(FaultKind::WrongCrc) => Some(Spoil::WrongCrc),
        Some(FaultKind::ReplaySealed) => Some(Spoil::Replay),
        Some(FaultKind::ReuseNonce) => Some(Spoil::ReuseNonce),
        _ => None,
    };
    resp.body = channel.seal(
        &req.method.to_ascii_uppercase(),
        &target(req),
        &resp.body,
        spoil,
    );
    resp.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    resp.with_header("Content-Type", "application/octet-stream")
}

/// `POST /iclock/exchange?type=publickey|factors` (7.2, 7.3).
pub(crate) fn exchange(
    state: &mut State,
    cfg: &ServerConfig,
    sn: &str,
    req: &Request,
    fault: Option<&FaultKind>,
) -> Response {
    if cfg.encryption == Encryption::Off {
        return crate::protocol::html_error(404, "this server does not encrypt");
    }
    let body = String::from_utf8_lossy(&req.body);
    let answer = match req.query_value("type") {
        Some(t) if t.eq_ignore_ascii_case("publickey") => {
            crypto::device_public_key(&body).map(|(key, der)| {
                state.secure.pending.insert(sn.to_string(), (key, der));
                if fault == Some(&FaultKind::BadPublicKey) {
                    crypto::bad_public_key_answer()
                } else {
                    crypto::public_key_answer(&crypto::server_key().spki)
                }
            })
        }
        Some(t) if t.eq_ignore_ascii_case("factors") => match state.secure.pending.remove(sn) {
            None => Err("factors before a public key".to_string()),
            Some((device, der)) => crypto::device_factor(&body).and_then(|r1| {
                let (r2, answer) = crypto::server_factor(&device)?;
                state
                    .secure
                    .channels
                    .insert(sn.to_string(), Channel::new(&r1, &r2, &der, sn));
                *state.secure.exchanges.entry(sn.to_string()).or_default() += 1;
                Ok(answer)
            }),
        },
        _ => Err("type must be publickey or factors".to_string()),
    };
    match answer {
        Ok(text) => Response::new(200, text.into_bytes()),
        Err(why) => {
            log::warn!("exchange with {sn} refused: {why}");
            Response::new(400, format!("exchange refused: {why}").into_bytes())
        }
    }
}
