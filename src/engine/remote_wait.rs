//! Remote identifications waiting for the server (section 13): a local
//! grant that was sent to the server, by request id, with what is needed
//! to carry out the answer (or, when the server does not answer within
//! [`super::remote::REMOTE_TIMEOUT`], the local decision). Owns the waits
//! and their ids; time passed in. It NEVER talks to the server (the
//! `engine-remote` thread does) and never decides anything itself.

use super::decide::Verdict;
use super::identify::{Arrival, Presented};
use std::collections::HashMap;
use std::time::Instant;

/// A local grant waiting for the server's remote identification.
#[derive(Debug, Clone)]
pub(super) struct RemotePending {
    pub at: Arrival,
    pub pin: String,
    pub presented: Presented,
    /// The local decision, carried out when the server does not answer.
    pub local: Verdict,
    pub until: Instant,
    pub last_edge: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct RemoteWaits {
    pending: HashMap<u64, RemotePending>,
    next_id: u64,
}

impl Default for RemoteWaits {
    fn default() -> Self {
        RemoteWaits {
            pending: HashMap::new(),
            next_id: 1,
        }
    }
}

impl RemoteWaits {
    /// The id of the next request (ids are never reused).
    pub(super) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn wait(&mut self, id: u64, pending: RemotePending) {
        self.pending.insert(id, pending);
    }

    /// The wait an answer belongs to; `None` once it timed out.
    pub(super) fn take(&mut self, id: u64) -> Option<RemotePending> {
        self.pending.remove(&id)
    }

    /// The ids of the waits whose time ran out by `now` (take them to
    /// decide locally).
    pub(super) fn expired(&self, now: Instant) -> Vec<u64> {
        self.pending
            .iter()
            .filter(|(_, p)| now >= p.until)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(super) fn deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.pending.values().map(|p| p.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pending(until: Instant) -> RemotePending {
        RemotePending {
            at: Arrival {
                reader: 1,
                door: 1,
                inout: 0,
            },
            pin: "7".into(),
            presented: Presented::typed(0),
            local: Verdict::Grant(0),
            until,
            last_edge: None,
        }
    }

    #[test]
    fn ids_are_new_and_an_answer_after_the_timeout_finds_nothing() {
        let t0 = Instant::now();
        let mut w = RemoteWaits::default();
        let a = w.next_id();
        let b = w.next_id();
        assert_ne!(a, b);
        w.wait(a, pending(t0 + Duration::from_secs(3)));
        w.wait(b, pending(t0 + Duration::from_secs(5)));
        assert_eq!(w.deadlines().min(), Some(t0 + Duration::from_secs(3)));
        assert!(w.expired(t0).is_empty());
        assert_eq!(w.expired(t0 + Duration::from_secs(3)), vec![a]);
        assert!(w.take(a).is_some(), "taken to decide locally");
        assert!(w.take(a).is_none(), "an answer after that finds nothing");
        assert_eq!(w.take(b).map(|p| p.local), Some(Verdict::Grant(0)));
        assert_eq!(w.deadlines().next(), None);
    }
}
