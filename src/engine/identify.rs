//! Identification: who presented themselves, where, and how. Owns the
//! keypad entries and combined verifications waiting per reader, and
//! answers from the server's tables which user a card, a password or a
//! user ID names, whether a reader is disabled and whether a typed code is
//! a door password. It NEVER decides whether anyone may pass, never drives
//! an output and never writes an event: the engine carries its answers to
//! the decision and logs them.

use super::keypad::{Pending, ReaderEntry};
use super::rules;
use super::verify::factor;
use lintel_hal::board::{BoardConfig, ReaderDirection};
use rusqlite::Connection;
use std::collections::HashMap;
use std::time::Instant;

/// Where an identification arrived: the reader, its door and side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Arrival {
    pub reader: u8,
    pub door: u8,
    /// 0 = in, 1 = out (rtlog `inoutstatus`).
    pub inout: u32,
}

impl Arrival {
    /// Where reader `reader` of the board arrives; `None` for a reader the
    /// board does not have.
    pub(super) fn at_reader(board: &BoardConfig, reader: u8) -> Option<Arrival> {
        let r = board.reader(reader)?;
        Some(Arrival {
            reader,
            door: r.door,
            inout: match r.direction {
                ReaderDirection::In => 0,
                ReaderDirection::Out => 1,
            },
        })
    }

    /// [`Arrival::at_reader`] for an input that came from the reader: an
    /// unknown reader is logged.
    pub(super) fn of_input(board: &BoardConfig, reader: u8) -> Option<Arrival> {
        let at = Self::at_reader(board, reader);
        if at.is_none() {
            log::warn!("input from reader {reader}, which the board does not have; ignored");
        }
        at
    }
}

/// What a person presented so far (the rtlog card fields and factor bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Presented {
    pub card: String,
    pub site: String,
    pub factors: u16,
}

impl Presented {
    /// A card, with its site code when the format has one.
    pub(super) fn card(number: u64, site: Option<u32>) -> Presented {
        Presented {
            card: number.to_string(),
            site: site.map_or_else(|| "0".into(), |s| s.to_string()),
            factors: factor::CARD,
        }
    }

    /// Something typed, without a card.
    pub(super) fn typed(factors: u16) -> Presented {
        Presented {
            card: "0".into(),
            site: "0".into(),
            factors,
        }
    }

    /// What a waiting combined verification had presented.
    pub(super) fn of_pending(p: Pending) -> (String, Presented) {
        (
            p.pin,
            Presented {
                card: p.card,
                site: p.site,
                factors: p.presented,
            },
        )
    }
}

/// A door-wide password (Appendix 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DoorPassword {
    Emergency,
    Duress,
}

/// The keypad entries and waiting combined verifications, per reader.
#[derive(Debug, Default)]
pub(super) struct Keypads {
    entries: HashMap<u8, ReaderEntry>,
}

impl Keypads {
    /// A key pressed at `reader`: the entry it ends (`#`), if any.
    pub(super) fn on_key(&mut self, reader: u8, key: char, now: Instant) -> Option<String> {
        self.entries.entry(reader).or_default().on_key(key, now)
    }

    /// Takes the combined verification waiting at `reader`.
    pub(super) fn take_pending(&mut self, reader: u8) -> Option<Pending> {
        self.entries.entry(reader).or_default().pending.take()
    }

    /// Makes `pending` wait at `reader` for the rest of its factors.
    pub(super) fn wait(&mut self, reader: u8, pending: Pending) {
        self.entries.entry(reader).or_default().pending = Some(pending);
    }

    /// The combined verifications that timed out by `now` (taken), by reader.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<(u8, Pending)> {
        let mut expired = Vec::new();
        for (reader, e) in &mut self.entries {
            if let Some(p) = e.poll(now) {
                expired.push((*reader, p));
            }
        }
        expired
    }

    pub(super) fn deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.entries.values().filter_map(|e| e.next_deadline())
    }
}

/// The user a card belongs to, or the refusal (pin, event) when none:
/// a lost multi-card user's card is 38, an unknown card 27.
#[allow(clippy::type_complexity)]
pub(super) fn user_of_card(
    conn: &Connection,
    card: &str,
    number: u64,
) -> rusqlite::Result<Result<rules::User, (String, u32)>> {
    if let Some(u) = rules::user_by_card(conn, card)? {
        return Ok(Ok(u));
    }
    Ok(match rules::extra_card(conn, number)? {
        Some(extra) if extra.lost => Err((extra.pin, 38)),
        Some(extra) => match rules::user_by_pin(conn, &extra.pin)? {
            Some(u) => Ok(u),
            None => Err(("0".into(), 27)),
        },
        None => Err(("0".into(), 27)),
    })
}

/// The user a typed password identifies: `None` when nobody has it, or
/// when several users share it (passwords that identify must be unique;
/// two users sharing one cannot be told apart, so neither opens).
pub(super) fn user_of_password(
    conn: &Connection,
    typed: &str,
    door: u8,
) -> rusqlite::Result<Option<rules::User>> {
    rules::users_by_password(conn, typed).map(|mut users| {
        if users.len() > 1 {
            log::warn!("door {door}: a password shared by several users was typed; refused");
            None
        } else {
            users.pop()
        }
    })
}

/// ReaderProperty `Disable` (AccSupportFunList position 0, "Reader
/// disabling"): whether the reader `at` arrived at is disabled. An
/// unreadable table keeps the reader in service (its identifications
/// still go through every other rule) and is logged.
pub(super) fn reader_disabled(conn: &Connection, at: Arrival) -> bool {
    rules::reader_disabled(conn, at.door, at.inout).unwrap_or_else(|e| {
        log::error!("door {}: cannot read the reader properties ({e})", at.door);
        false
    })
}

/// Whether `typed` is the door's emergency (DoorSupplierPassWord, or
/// DoorSupperPassWord as 12.5.1 and App. 14's example spell it) or duress
/// (DoorForcePassWord) password.
pub(super) fn door_password(
    conn: &Connection,
    door: u8,
    typed: &str,
) -> rusqlite::Result<Option<DoorPassword>> {
    let is = |name: &str| -> rusqlite::Result<bool> {
        Ok(rules::door_param(conn, door, name)?
            .is_some_and(|p| !p.trim().is_empty() && p.trim() == typed))
    };
    if is("SupplierPassWord")? || is("SupperPassWord")? {
        return Ok(Some(DoorPassword::Emergency));
    }
    if is("ForcePassWord")? {
        return Ok(Some(DoorPassword::Duress));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keypad::COMBINED_TIMEOUT;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn a_card_names_its_user_a_lost_extra_card_38_and_an_unknown_one_27() {
        let (_d, s) = store();
        let c = s.conn();
        c.execute_batch(
            "INSERT INTO users(pin, cardno, password) VALUES ('7', '1234', ''), ('8', '', '');
             INSERT INTO multi_card_users(pin, cardno, loss_card_flag) VALUES
               ('8', 'FF', 0), ('9', '100', 1), ('404', '200', 0);",
        )
        .unwrap();
        assert_eq!(user_of_card(c, "1234", 1234).unwrap().unwrap().pin, "7");
        // The extra-card table keeps hexadecimal text: 255 = FF.
        assert_eq!(user_of_card(c, "255", 255).unwrap().unwrap().pin, "8");
        assert_eq!(
            user_of_card(c, "100", 100).unwrap().unwrap_err(),
            ("9".to_string(), 38)
        );
        assert_eq!(
            user_of_card(c, "200", 200).unwrap().unwrap_err(),
            ("0".to_string(), 27),
            "an extra card whose user is gone"
        );
        assert_eq!(
            user_of_card(c, "5", 5).unwrap().unwrap_err(),
            ("0".to_string(), 27)
        );
    }

    #[test]
    fn a_password_shared_by_two_users_identifies_nobody() {
        let (_d, s) = store();
        let c = s.conn();
        c.execute_batch(
            "INSERT INTO users(pin, password) VALUES ('1', '1111'), ('2', '2222'), ('3', '2222');",
        )
        .unwrap();
        let pin = |typed| user_of_password(c, typed, 1).unwrap().map(|u| u.pin);
        assert_eq!(pin("1111"), Some("1".into()));
        assert_eq!(pin("2222"), None, "shared by users 2 and 3");
        assert_eq!(pin("3333"), None, "nobody's");
    }

    #[test]
    fn door_passwords_are_told_apart_and_blank_ones_match_nothing() {
        let (_d, s) = store();
        let c = s.conn();
        assert_eq!(door_password(c, 1, "").unwrap(), None);
        s.set_option("Door1SupplierPassWord", " 999 ").unwrap();
        s.set_option("Door1ForcePassWord", "666").unwrap();
        s.set_option("Door2ForcePassWord", " ").unwrap();
        assert_eq!(
            door_password(c, 1, "999").unwrap(),
            Some(DoorPassword::Emergency)
        );
        assert_eq!(
            door_password(c, 1, "666").unwrap(),
            Some(DoorPassword::Duress)
        );
        assert_eq!(door_password(c, 2, "666").unwrap(), None);
        assert_eq!(door_password(c, 2, "").unwrap(), None);
        // The spec's own spelling, in any case.
        s.set_option("door3SupperPassword", "4242").unwrap();
        assert_eq!(
            door_password(c, 3, "4242").unwrap(),
            Some(DoorPassword::Emergency)
        );
    }

    #[test]
    fn a_waiting_verification_is_taken_once_and_expires() {
        let t0 = Instant::now();
        let mut pads = Keypads::default();
        pads.wait(
            2,
            Pending {
                pin: "7".into(),
                card: "1234".into(),
                site: "0".into(),
                presented: factor::CARD,
                until: t0 + COMBINED_TIMEOUT,
            },
        );
        assert_eq!(pads.deadlines().min(), Some(t0 + COMBINED_TIMEOUT));
        assert!(pads.expired(t0).is_empty());
        let expired = pads.expired(t0 + COMBINED_TIMEOUT);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, 2);
        assert_eq!(pads.take_pending(2), None, "expiry took it");
        assert_eq!(pads.deadlines().next(), None);
    }
}
