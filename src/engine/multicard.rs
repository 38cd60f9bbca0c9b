//! Multi-card opening (DoorMultiCardOpenDoor, `multimcard`): a door opens
//! only when people of a listed group combination have verified one after
//! another, each within DoorMultiCardInterTime of the previous. A plain
//! state machine taking `now`, like [`super::door::Door`].

use std::time::{Duration, Instant};

/// The gap allowed between two people when DoorMultiCardInterTime is not
/// set (Appendix 10 names no default).
pub const DEFAULT_INTER_TIME: Duration = Duration::from_secs(10);

/// What one verified person's arrival did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The combination is complete: open (event 3).
    Open,
    /// Waiting for more people (event 26).
    Wait,
    /// The person's group is in no combination of the door (event 40).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiWait {
    Idle,
    /// Users (pin, group) verified so far, in order; void at `until`.
    Waiting {
        users: Vec<(String, i64)>,
        until: Instant,
    },
}

/// Whether `groups` fits inside `combo` as a multiset, and fills it.
fn fit(combo: &[i64], groups: &[i64]) -> Option<bool> {
    let mut left = combo.to_vec();
    for g in groups {
        let i = left.iter().position(|c| c == g)?;
        left.swap_remove(i);
    }
    Some(left.is_empty())
}

impl MultiWait {
    /// A verified user of `group` arrives; `combos` are the door's combinations.
    pub fn present(
        &mut self,
        pin: &str,
        group: Option<i64>,
        combos: &[Vec<i64>],
        now: Instant,
        window: Duration,
    ) -> Outcome {
        self.poll(now);
        let Some(group) = group.filter(|g| combos.iter().any(|c| c.contains(g))) else {
            return Outcome::Refused;
        };
        let mut users = match std::mem::replace(self, MultiWait::Idle) {
            MultiWait::Waiting { users, .. } => users,
            MultiWait::Idle => Vec::new(),
        };
        // The same person twice counts once.
        if !users.iter().any(|(p, _)| p == pin) {
            users.push((pin.to_string(), group));
        }
        let fits = |users: &[(String, i64)]| {
            let groups: Vec<i64> = users.iter().map(|(_, g)| *g).collect();
            combos.iter().filter_map(|c| fit(c, &groups)).max()
        };
        let verdict = match fits(&users) {
            Some(v) => Some(v),
            None => {
                // This person does not fit with those waiting: start anew.
                users = vec![(pin.to_string(), group)];
                fits(&users)
            }
        };
        match verdict {
            Some(true) => Outcome::Open,
            _ => {
                *self = MultiWait::Waiting {
                    users,
                    // A window past what Instant holds (a server's
                    // value) is cut to a day.
                    until: now
                        .checked_add(window)
                        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
                        .unwrap_or(now),
                };
                Outcome::Wait
            }
        }
    }

    /// Time passed: returns the last waiting user's pin when the wait expired.
    pub fn poll(&mut self, now: Instant) -> Option<String> {
        if let MultiWait::Waiting { users, until } = self {
            if now >= *until {
                let last = users.last().map(|(p, _)| p.clone());
                *self = MultiWait::Idle;
                return last;
            }
        }
        None
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            MultiWait::Waiting { until, .. } => Some(*until),
            MultiWait::Idle => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(10);

    #[test]
    fn one_of_each_group_opens() {
        let t = Instant::now();
        let combos = vec![vec![1, 2]];
        let mut m = MultiWait::Idle;
        assert_eq!(m.present("a", Some(1), &combos, t, W), Outcome::Wait);
        assert_eq!(
            m.present("a", Some(1), &combos, t, W),
            Outcome::Wait,
            "twice is once"
        );
        assert_eq!(m.present("b", Some(2), &combos, t, W), Outcome::Open);
        assert_eq!(m, MultiWait::Idle);
        assert_eq!(m.present("c", Some(3), &combos, t, W), Outcome::Refused);
        assert_eq!(m.present("c", None, &combos, t, W), Outcome::Refused);
    }

    #[test]
    fn a_group_listed_twice_needs_two_and_a_misfit_starts_anew() {
        let t = Instant::now();
        let combos = vec![vec![1, 1], vec![2, 3]];
        let mut m = MultiWait::Idle;
        assert_eq!(m.present("a", Some(1), &combos, t, W), Outcome::Wait);
        assert_eq!(m.present("x", Some(2), &combos, t, W), Outcome::Wait);
        // x started anew: a second group-1 person no longer completes.
        assert_eq!(m.present("b", Some(1), &combos, t, W), Outcome::Wait);
        assert_eq!(m.present("c", Some(1), &combos, t, W), Outcome::Open);
    }

    #[test]
    fn the_wait_expires_after_the_window() {
        let t = Instant::now();
        let combos = vec![vec![1, 2]];
        let mut m = MultiWait::Idle;
        m.present("a", Some(1), &combos, t, W);
        assert_eq!(m.next_deadline(), Some(t + W));
        assert_eq!(m.poll(t + W - Duration::from_millis(1)), None);
        assert_eq!(m.poll(t + W), Some("a".into()));
        assert_eq!(m.present("b", Some(2), &combos, t + W, W), Outcome::Wait);
    }
}
