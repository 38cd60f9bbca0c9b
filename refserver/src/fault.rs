//! Faults injected on demand: what goes wrong, for which requests, how often.

use std::time::Duration;

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Close each new connection right after accepting it, before reading
    /// anything (targets are ignored: no request has been read yet). Counts
    /// connections, not requests.
    RefuseConnection,
    /// Read the request, then close the connection without any reply.
    CloseWithoutReply,
    /// Wait this long before handling the request (the request is still
    /// recorded and answered normally afterwards).
    Delay(Duration),
    /// Read the request, answer nothing and keep the connection open until
    /// the client gives up or this long has passed (nothing is handled).
    Hang(Duration),
    /// Answer this status (e.g. 500) with a short HTML body, without handling
    /// the request (nothing recorded in the protocol state).
    Status(u16),
    /// Handle the request normally but replace the reply body by bytes that
    /// are neither UTF-8 nor protocol text.
    GarbageBody,
    /// Handle the request normally, announce the full Content-Length, send
    /// only `keep` body bytes (clamped), then close.
    TruncateBody { keep: usize },
    /// Like `TruncateBody` but the connection is reset (RST) instead of closed.
    ResetMidBody { keep: usize },
    /// Handle the request normally and send the reply `chunk` bytes at a
    /// time, head included, with `pause` between writes.
    SlowDrip { chunk: usize, pause: Duration },
    /// Handle the request normally but announce a Content-Length `delta`
    /// bytes off the body's length, then write the whole body. Short
    /// (negative): the rest of the body is left where the next reply on the
    /// connection would start. Long (positive): the connection stays open,
    /// silent, until the client gives up (at most 60 s).
    ContentLengthOff(i64),
    /// Handle the request normally and send the reply chunked, in several
    /// chunks, whatever the configured framing.
    Chunked,
    /// Handle the request normally, send the first chunk of a chunked reply,
    /// then a chunk-size line that is not hex and the rest, then close.
    BrokenChunked,
    /// Handle the request normally and send the body gzip-compressed with
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: gzip` on a body that is not gzip.
    GzipGarbage,
    /// `Content-Encoding: gzip` on a valid gzip stream of `inflated` zero
    /// bytes: about a thousandth of that on the wire (CRC and length correct).
    GzipBomb { inflated: u64 },
    /// Handle the request normally, then send its reply followed by filler
    /// without line breaks up to `bytes` in all (Content-Length announced,
    /// streamed, never held in memory).
    HugeBody { bytes: u64 },
    /// Handle the request normally, then send its reply's first line followed
    /// by `lines` lines of `x` (streamed).
    JunkLines { lines: u64 },
    /// Handle the request normally and add a line of bytes that are not
    /// UTF-8 to the reply (the real lines stay readable).
    NonUtf8Line,
    /// Handle the request normally but send this `Date` header instead of
    /// the server's clock (`None`: no Date header at all).
    BadDate(Option<String>),
    /// Configuration answers (the init block, the registry and push
    /// replies) get hostile key/value lines after their real ones: values out
    /// of every range, non-printable and huge values, lines without `=`.
    /// Other requests are answered normally.
    GarbageConfig,
    /// Handle the request normally but answer exactly `body`, with `headers`
    /// added (e.g. `Content-Encoding: gzip` for a compressed or bomb body)
    /// and `status` instead of the handler's when given (e.g. a 302 with a
    /// `Location`): junk lines, oversized, non-UTF-8 or redirecting answers.
    ReplaceBody {
        status: Option<u16>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// Encrypted PUSH: flip a bit of the sealed answer.
    TamperSealed,
    /// Encrypted PUSH: seal the answer with a CRC32 that does not match it.
    WrongCrc,
    /// Encrypted PUSH: send the previous sealed answer again.
    ReplaySealed,
    /// Encrypted PUSH: seal the answer under the previous answer's counter.
    ReuseNonce,
    /// Encrypted PUSH: answer the public-key exchange with a key that is
    /// not one.
    BadPublicKey,
}

impl FaultKind {
    /// A short name for reports (one per kind, whatever its parameters).
    pub fn name(&self) -> &'static str {
        // Exhaustive on purpose: a new kind must get a name and a place in
        // `hostile_catalogue`, whose test checks every name appears.
        match self {
            FaultKind::RefuseConnection => "refused",
            FaultKind::CloseWithoutReply => "close-without-reply",
            FaultKind::Delay(_) => "delay",
            FaultKind::Hang(_) => "hang",
            FaultKind::Status(s) if *s < 500 => "status-4xx",
            FaultKind::Status(_) => "status-5xx",
            FaultKind::GarbageBody => "garbage-body",
            FaultKind::TruncateBody { .. } => "truncated",
            FaultKind::ResetMidBody { .. } => "reset",
            FaultKind::SlowDrip { .. } => "slow-drip",
            FaultKind::ContentLengthOff(d) if *d < 0 => "content-length-short",
            FaultKind::ContentLengthOff(_) => "content-length-long",
            FaultKind::Chunked => "chunked",
            FaultKind::BrokenChunked => "chunked-broken",
            FaultKind::Gzip => "gzip",
            FaultKind::GzipGarbage => "gzip-garbage",
            FaultKind::GzipBomb { .. } => "gzip-bomb",
            FaultKind::HugeBody { .. } => "huge-body",
            FaultKind::JunkLines { .. } => "junk-lines",
            FaultKind::NonUtf8Line => "non-utf8",
            FaultKind::BadDate(_) => "bad-date",
            FaultKind::GarbageConfig => "garbage-config",
            FaultKind::ReplaceBody { .. } => "replace-body",
            FaultKind::TamperSealed => "tamper-sealed",
            FaultKind::WrongCrc => "wrong-crc",
            FaultKind::ReplaySealed => "replay-sealed",
            FaultKind::ReuseNonce => "reuse-nonce",
            FaultKind::BadPublicKey => "bad-public-key",
        }
    }
}

/// Which requests a fault applies to. The default matches every request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Request path that must match exactly, e.g. `/iclock/cdata`.
    pub path: Option<String>,
    /// HTTP method that must match (case-insensitive), e.g. `POST`.
    pub method: Option<String>,
    /// Query pairs that must all be present with these values
    /// (case-insensitive names and values), e.g. `("table", "rtlog")`.
    pub query: Vec<(String, String)>,
}

impl Target {
    pub fn matches(&self, method: &str, path: &str, query: &[(String, String)]) -> bool {
        if self.path.as_deref().is_some_and(|p| p != path) {
            return false;
        }
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        self.query.iter().all(|(k, v)| {
            query
                .iter()
                .any(|(qk, qv)| qk.eq_ignore_ascii_case(k) && qv.eq_ignore_ascii_case(v))
        })
    }
}

/// A fault: kind, target and how many times it fires (`None` = until cleared).
///
/// ```
/// use lintel_refserver::{Fault, FaultKind};
/// // The next 3 rtlog uploads get a 500.
/// let f = Fault::new(FaultKind::Status(500)).on_path("/iclock/cdata").with_query("table", "rtlog").times(3);
/// assert_eq!(f.remaining, Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: Target,
    pub remaining: Option<u32>,
}

impl Fault {
    /// A fault on every request until cleared.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            target: Target::default(),
            remaining: None,
        }
    }

    /// Only requests to this path.
    pub fn on_path(mut self, path: &str) -> Self {
        self.target.path = Some(path.to_string());
        self
    }

    /// Only requests with this method.
    pub fn on_method(mut self, method: &str) -> Self {
        self.target.method = Some(method.to_string());
        self
    }

    /// Only requests whose query has `key=value`.
    pub fn with_query(mut self, key: &str, value: &str) -> Self {
        self.target.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Fire this many times, then disappear.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
}

/// One hostile situation of [`hostile_catalogue`]: a name for reports and
/// the faults that make it (added together, each firing `times`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostileCase {
    pub name: String,
    pub faults: Vec<Fault>,
}

/// The exchanges a hostile answer is aimed at, each with the request
/// target(s) that carry it.
fn exchanges() -> Vec<(&'static str, Vec<Fault>)> {
    let config = |kind: &FaultKind| {
        vec![
            Fault::new(kind.clone())
                .on_path("/iclock/cdata")
                .on_method("GET"),
            Fault::new(kind.clone()).on_path("/iclock/registry"),
            Fault::new(kind.clone()).on_path("/iclock/push"),
        ]
    };
    let probe = FaultKind::Status(500);
    vec![
        (
            "getrequest",
            vec![Fault::new(probe.clone()).on_path("/iclock/getrequest")],
        ),
        (
            "upload-ack",
            vec![Fault::new(probe.clone())
                .on_path("/iclock/cdata")
                .on_method("POST")],
        ),
        ("config", config(&probe)),
    ]
}

/// Every fault kind in the shapes a hostile or broken network produces,
/// for a run that cycles through them all against a real device. Faults
/// about the connection or the framing hit whatever request comes next;
/// answers whose size or encoding is the attack are aimed at each kind of
/// exchange in turn (getrequest, upload acknowledgement, configuration
/// answers), and the configuration answers are preceded by one failed poll
/// so the device reconnects and asks for them.
pub fn hostile_catalogue(times: u32) -> Vec<HostileCase> {
    let any = |name: &str, kind: FaultKind| HostileCase {
        name: name.to_string(),
        faults: vec![Fault::new(kind).times(times)],
    };
    let mut cases = vec![
        any("refused", FaultKind::RefuseConnection),
        any("close-without-reply", FaultKind::CloseWithoutReply),
        any("hang", FaultKind::Hang(Duration::from_secs(30))),
        any(
            "slow-drip",
            FaultKind::SlowDrip {
                chunk: 7,
                pause: Duration::from_millis(40),
            },
        ),
        any("delay", FaultKind::Delay(Duration::from_secs(5))),
        any("truncated", FaultKind::TruncateBody { keep: 1 }),
        any("reset", FaultKind::ResetMidBody { keep: 0 }),
        any("status-4xx", FaultKind::Status(403)),
        any("status-4xx-400", FaultKind::Status(400)),
        any("status-5xx", FaultKind::Status(500)),
        any("status-5xx-503", FaultKind::Status(503)),
        any("content-length-short", FaultKind::ContentLengthOff(-1)),
        any("content-length-long", FaultKind::ContentLengthOff(100)),
        any("chunked", FaultKind::Chunked),
        any("chunked-broken", FaultKind::BrokenChunked),
        any("gzip", FaultKind::Gzip),
        any("gzip-garbage", FaultKind::GzipGarbage),
        any("garbage-body", FaultKind::GarbageBody),
        any("non-utf8", FaultKind::NonUtf8Line),
        any(
            "bad-date-1970",
            FaultKind::BadDate(Some("Thu, 01 Jan 1970 00:00:00 GMT".into())),
        ),
        any(
            "bad-date-2100",
            FaultKind::BadDate(Some("Fri, 01 Jan 2100 00:00:00 GMT".into())),
        ),
        any(
            "bad-date-garbage",
            FaultKind::BadDate(Some("yesterday at noon, more or less".into())),
        ),
        any("bad-date-missing", FaultKind::BadDate(None)),
    ];
    let sized = [
        FaultKind::HugeBody { bytes: 40 << 20 },
        FaultKind::JunkLines { lines: 5_000_000 },
        FaultKind::GzipBomb {
            inflated: 256 << 20,
        },
    ];
    for kind in sized.iter().chain([&FaultKind::GarbageConfig]) {
        for (exchange, targets) in exchanges() {
            if *kind == FaultKind::GarbageConfig && exchange != "config" {
                continue;
            }
            let mut faults = Vec::new();
            if exchange == "config" {
                // One failed poll, so the device reconnects (init, registry, push).
                faults.push(
                    Fault::new(FaultKind::Status(503))
                        .on_path("/iclock/getrequest")
                        .times(1),
                );
            }
            for probe in targets {
                faults.push(Fault {
                    kind: kind.clone(),
                    target: probe.target,
                    remaining: Some(times),
                });
            }
            cases.push(HostileCase {
                name: format!("{}@{exchange}", kind.name()),
                faults,
            });
        }
    }
    cases
}

/// The active faults, consulted in insertion order.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    faults: Vec<Fault>,
}

impl FaultSet {
    pub fn add(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    /// Takes one firing of the first fault matching `pick`, removing it when used up.
    fn take(&mut self, pick: impl Fn(&Fault) -> bool) -> Option<FaultKind> {
        let idx = self.faults.iter().position(pick)?;
        let fault = &mut self.faults[idx];
        let kind = fault.kind.clone();
        if let Some(n) = fault.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.faults.remove(idx);
            }
        }
        Some(kind)
    }

    /// A `RefuseConnection` firing for a newly accepted connection, if any.
    pub fn take_refusal(&mut self) -> bool {
        self.take(|f| f.kind == FaultKind::RefuseConnection)
            .is_some()
    }

    /// The first request-level fault matching this request, if any.
    pub fn take_for_request(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
    ) -> Option<FaultKind> {
        self.take(|f| {
            f.kind != FaultKind::RefuseConnection && f.target.matches(method, path, query)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn targeted_fault_fires_only_on_match_and_counts_down() {
        let mut set = FaultSet::default();
        set.add(
            Fault::new(FaultKind::Status(500))
                .on_path("/iclock/cdata")
                .with_query("table", "rtlog")
                .times(2),
        );
        let rtlog = q(&[("SN", "1"), ("table", "rtlog")]);
        let rtstate = q(&[("SN", "1"), ("table", "rtstate")]);
        assert_eq!(
            set.take_for_request("POST", "/iclock/cdata", &rtstate),
            None
        );
        assert_eq!(set.take_for_request("GET", "/iclock/ping", &rtlog), None);
        assert_eq!(
            set.take_for_request("POST", "/iclock/cdata", &rtlog),
            Some(FaultKind::Status(500))
        );
        assert_eq!(
            set.take_for_request("POST", "/iclock/cdata", &rtlog),
            Some(FaultKind::Status(500))
        );
        assert_eq!(set.take_for_request("POST", "/iclock/cdata", &rtlog), None);
    }

    #[test]
    fn the_catalogue_tries_every_kind() {
        let cases = hostile_catalogue(2);
        let tried: std::collections::HashSet<&str> = cases
            .iter()
            .flat_map(|c| c.faults.iter().map(|f| f.kind.name()))
            .collect();
        // Every kind but the plain delay that the slow-answer tests use is
        // hostile; the catalogue carries all of them.
        for kind in [
            FaultKind::RefuseConnection,
            FaultKind::CloseWithoutReply,
            FaultKind::Delay(Duration::ZERO),
            FaultKind::Hang(Duration::ZERO),
            FaultKind::Status(404),
            FaultKind::Status(500),
            FaultKind::GarbageBody,
            FaultKind::TruncateBody { keep: 0 },
            FaultKind::ResetMidBody { keep: 0 },
            FaultKind::SlowDrip {
                chunk: 1,
                pause: Duration::ZERO,
            },
            FaultKind::ContentLengthOff(-1),
            FaultKind::ContentLengthOff(1),
            FaultKind::Chunked,
            FaultKind::BrokenChunked,
            FaultKind::Gzip,
            FaultKind::GzipGarbage,
            FaultKind::GzipBomb { inflated: 0 },
            FaultKind::HugeBody { bytes: 0 },
            FaultKind::JunkLines { lines: 0 },
            FaultKind::NonUtf8Line,
            FaultKind::BadDate(None),
            FaultKind::GarbageConfig,
        ] {
            assert!(tried.contains(kind.name()), "{} is not tried", kind.name());
        }
        let names: std::collections::HashSet<&str> =
            cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), cases.len(), "case names are unique");
        assert!(cases
            .iter()
            .all(|c| c.faults.iter().all(|f| f.remaining.is_some())));
    }

    #[test]
    fn refusal_is_separate_from_request_faults() {
        let mut set = FaultSet::default();
        set.add(Fault::new(FaultKind::RefuseConnection).times(1));
        assert_eq!(set.take_for_request("GET", "/", &[]), None);
        assert!(set.take_refusal());
        assert!(!set.take_refusal());
    }
}
