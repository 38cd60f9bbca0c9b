//! Keypad entry and combined verification at one reader, as a plain state
//! machine taking `now` (sans-IO like [`super::door::Door`]).
//!
//! A keypad sends one burst per key. Digits collect into an entry, `#` ends
//! it, `*` clears it, and an entry with no key for [`KEY_TIMEOUT`] is
//! dropped. A combined verification (card then password) waits at most
//! [`COMBINED_TIMEOUT`] from the first factor for the rest (event 75 after).

use std::time::{Duration, Instant};

/// Longest pause between two keys of one entry. The spec names none; 10 s
/// is what a person needs between digits, and short enough that a
/// half-typed entry does not wait for the next person.
pub const KEY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a first factor waits for the second (card, then password).
pub const COMBINED_TIMEOUT: Duration = Duration::from_secs(15);

/// Entries longer than this are cut (passwords have at most 8 digits, user
/// IDs a few more); the reader cannot make the buffer grow without bound.
pub const MAX_ENTRY: usize = 24;

/// A first factor waiting for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub pin: String,
    pub card: String,
    pub site: String,
    /// Factor bits presented so far ([`super::verify::factor`]).
    pub presented: u16,
    pub until: Instant,
}

/// The keys typed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    Idle,
    Typing { keys: String, last: Instant },
}

/// One reader's entry state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderEntry {
    pub keys: Keys,
    pub pending: Option<Pending>,
}

impl Default for ReaderEntry {
    fn default() -> Self {
        ReaderEntry {
            keys: Keys::Idle,
            pending: None,
        }
    }
}

impl ReaderEntry {
    /// One key. Returns the finished entry when `#` ends a non-empty one.
    pub fn on_key(&mut self, key: char, now: Instant) -> Option<String> {
        self.expire_keys(now);
        match key {
            '#' => match std::mem::replace(&mut self.keys, Keys::Idle) {
                Keys::Typing { keys, .. } if !keys.is_empty() => Some(keys),
                _ => None,
            },
            '*' => {
                self.keys = Keys::Idle;
                None
            }
            '0'..='9' => {
                let mut keys = match std::mem::replace(&mut self.keys, Keys::Idle) {
                    Keys::Typing { keys, .. } => keys,
                    Keys::Idle => String::new(),
                };
                if keys.len() < MAX_ENTRY {
                    keys.push(key);
                }
                self.keys = Keys::Typing { keys, last: now };
                None
            }
            // Function keys A–D carry no meaning for access.
            _ => None,
        }
    }

    fn expire_keys(&mut self, now: Instant) {
        if let Keys::Typing { last, .. } = self.keys {
            if now >= last + KEY_TIMEOUT {
                self.keys = Keys::Idle;
            }
        }
    }

    /// Time passed: drops a stale entry; returns a combined verification
    /// that timed out (the caller logs 75).
    pub fn poll(&mut self, now: Instant) -> Option<Pending> {
        self.expire_keys(now);
        match &self.pending {
            Some(p) if now >= p.until => self.pending.take(),
            _ => None,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let keys = match self.keys {
            Keys::Typing { last, .. } => Some(last + KEY_TIMEOUT),
            Keys::Idle => None,
        };
        let pending = self.pending.as_ref().map(|p| p.until);
        match (keys, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(e: &mut ReaderEntry, keys: &str, now: Instant) -> Option<String> {
        keys.chars().fold(None, |_, k| e.on_key(k, now))
    }

    #[test]
    fn hash_ends_star_clears_and_a_pause_drops_the_entry() {
        let t0 = Instant::now();
        let mut e = ReaderEntry::default();
        assert_eq!(typed(&mut e, "123#", t0), Some("123".into()));
        assert_eq!(e.keys, Keys::Idle);
        assert_eq!(typed(&mut e, "99*45#", t0), Some("45".into()));
        assert_eq!(typed(&mut e, "#", t0), None, "an empty entry is nothing");
        typed(&mut e, "12", t0);
        assert_eq!(e.next_deadline(), Some(t0 + KEY_TIMEOUT));
        let late = t0 + KEY_TIMEOUT;
        assert_eq!(typed(&mut e, "3#", late), Some("3".into()), "12 expired");
        typed(&mut e, "12", t0);
        e.on_key('3', t0 + KEY_TIMEOUT - Duration::from_millis(1));
        assert_eq!(
            e.on_key('#', t0 + KEY_TIMEOUT),
            Some("123".into()),
            "each key restarts the pause"
        );
    }

    #[test]
    fn entries_are_bounded() {
        let t0 = Instant::now();
        let mut e = ReaderEntry::default();
        let long = "1".repeat(100) + "#";
        assert_eq!(typed(&mut e, &long, t0).map(|k| k.len()), Some(MAX_ENTRY));
    }

    #[test]
    fn a_pending_verification_expires_once() {
        let t0 = Instant::now();
        let mut e = ReaderEntry {
            keys: Keys::Idle,
            pending: Some(Pending {
                pin: "1".into(),
                card: "4660".into(),
                site: "0".into(),
                presented: super::super::verify::factor::CARD,
                until: t0 + COMBINED_TIMEOUT,
            }),
        };
        assert_eq!(e.next_deadline(), Some(t0 + COMBINED_TIMEOUT));
        assert!(e
            .poll(t0 + COMBINED_TIMEOUT - Duration::from_millis(1))
            .is_none());
        assert_eq!(
            e.poll(t0 + COMBINED_TIMEOUT).map(|p| p.pin),
            Some("1".into())
        );
        assert!(e.poll(t0 + COMBINED_TIMEOUT).is_none());
        assert_eq!(e.next_deadline(), None);
    }
}
