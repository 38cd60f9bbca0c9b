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
    fn refusal_is_separate_from_request_faults() {
        let mut set = FaultSet::default();
        set.add(Fault::new(FaultKind::RefuseConnection).times(1));
        assert_eq!(set.take_for_request("GET", "/", &[]), None);
        assert!(set.take_refusal());
        assert!(!set.take_refusal());
    }
}
