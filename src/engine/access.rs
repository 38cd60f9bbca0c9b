//! The path of one identification through the rooms: a frame, card or
//! keypad entry is identified ([`super::identify`]), checked against the
//! verification mode and the rules ([`super::decide`], then first-card
//! opening, then multi-card), possibly asked of the server (remote
//! identification, [`super::remote_wait`]), and carried out: the lock
//! released and the outputs driven first, then the rtlog record. This file
//! is the engine's wiring of that order; the rules themselves live in the
//! rooms.

use super::control;
use super::decide::{self, Verdict};
use super::handle::{EngineInput, GrantTiming};
use super::identify::{self, Arrival, DoorPassword, Presented};
use super::keypad;
use super::remote;
use super::remote_wait::RemotePending;
use super::runner::Engine;
use super::verify::{self, factor, Check, KeypadMeaning};
use super::{rtstate, rules};
use crate::store::NewEvent;
use lintel_hal::wiegand::{self, Decoded};
use std::time::Instant;

/// The event of an identification at a disabled reader (ReaderProperty
/// `Disable=1`): Appendix 2 has no code of its own for it, so the card is
/// not looked up and the swipe is logged as 23 "Unauthorized access" with
/// pin 0, which keeps it visible to the server instead of dropping it.
const READER_DISABLED: u32 = 23;

impl Engine {
    pub(super) fn on_frame(&mut self, reader: u8, frame: &wiegand::WiegandFrame, now: Instant) {
        let Some(at) = Arrival::of_input(&self.setup.board, reader) else {
            return;
        };
        if self.wiegand_test.is_some_and(|until| now >= until) {
            log::info!("the Wiegand test ended by itself; cards are decided again");
            self.wiegand_test = None;
        }
        if self.wiegand_test.is_some() {
            let line = format!(
                "type=wg\tbitscount={}\tbits={}\tsn={}",
                frame.bits.len(),
                frame.bits,
                self.setup.serial
            );
            if let Err(e) = self.store.push_outbox("testdata", &line) {
                log::error!("cannot queue the Wiegand test record: {e}");
            }
            self.pending_notify = true;
            return;
        }
        let table = self.formats.table(
            self.store.conn(),
            &self.setup.board,
            reader,
            self.data_version,
        );
        let decoded = wiegand::decode(frame, table);
        self.on_decoded(at, decoded, now, frame.last_edge.at);
    }

    /// A card, keys, or a frame no format matched, from one reader.
    pub(super) fn on_decoded(
        &mut self,
        at: Arrival,
        decoded: Decoded,
        now: Instant,
        last_edge: Instant,
    ) {
        let reader = at.reader;
        match decoded {
            Decoded::Card {
                number, site_code, ..
            } => {
                if identify::reader_disabled(self.store.conn(), at) {
                    let presented = Presented::card(number, site_code);
                    self.log_identification(at, "0", &presented, READER_DISABLED);
                    return;
                }
                self.on_card(at, number, site_code, now, last_edge);
            }
            Decoded::Keys(keys) => {
                for k in keys.chars() {
                    let typed = self.keypads.on_key(reader, k, now);
                    if let Some(typed) = typed {
                        self.on_keypad_entry(at, &typed, now);
                    }
                }
            }
            Decoded::BadFormat { bits, reason } => {
                log::info!("reader {reader}: frame {bits} matches no format ({reason:?})");
                // 42: incorrect Wiegand format.
                self.log_plain(42, u32::from(at.door));
            }
        }
    }

    /// Identification by card: who it is, then the verification mode.
    fn on_card(
        &mut self,
        at: Arrival,
        number: u64,
        site: Option<u32>,
        now: Instant,
        last_edge: Instant,
    ) {
        let presented = Presented::card(number, site);
        let user = match identify::user_of_card(self.store.conn(), &presented.card, number) {
            Ok(Ok(u)) => u,
            Ok(Err((pin, event))) => {
                self.log_identification(at, &pin, &presented, event);
                return;
            }
            Err(e) => {
                // Without readable rules nothing can be granted; the event says why.
                log::error!(
                    "door {}: cannot read the rules ({e}); card {} denied",
                    at.door,
                    presented.card
                );
                self.log_identification(at, "0", &presented, 23);
                return;
            }
        };
        // A password typed first for the same user completes with the card.
        let mut presented = presented;
        if let Some(p) = self.keypads.take_pending(at.reader) {
            if p.pin == user.pin && p.presented & factor::CARD == 0 {
                presented.factors |= p.presented;
            }
        }
        self.verify_and_decide(at, user, presented, now, Some(last_edge));
    }

    /// A keypad entry ended by `#`: the second factor of a waiting
    /// verification, or an identification by password or user ID.
    fn on_keypad_entry(&mut self, at: Arrival, typed: &str, now: Instant) {
        let when = self.local_now();
        let pending = self.keypads.take_pending(at.reader);
        if identify::reader_disabled(self.store.conn(), at) {
            // Door passwords included: nothing typed at a disabled reader counts.
            let presented = Presented::typed(factor::PASSWORD);
            self.log_identification(at, "0", &presented, READER_DISABLED);
            return;
        }
        match identify::door_password(self.store.conn(), at.door, typed) {
            Ok(Some(kind)) => {
                self.open_by_door_password(at, kind, pending, now);
                return;
            }
            Ok(None) => {}
            Err(e) => log::error!("door {}: cannot read its passwords ({e})", at.door),
        }
        if let Some(p) = pending {
            self.complete_pending(at, p, typed, now);
            return;
        }
        let mode = decide::verify_mode(self.store.conn(), at, None, when);
        let (factors, found) = match mode.keypad_meaning() {
            KeypadMeaning::Password => (
                factor::PASSWORD,
                identify::user_of_password(self.store.conn(), typed, at.door),
            ),
            KeypadMeaning::UserId => (
                factor::USER_ID,
                rules::user_by_pin(self.store.conn(), typed),
            ),
            KeypadMeaning::Nothing => {
                let presented = Presented::typed(factor::PASSWORD);
                // 41: the door takes nothing from the keypad now.
                self.log_identification(at, "0", &presented, 41);
                return;
            }
        };
        let presented = Presented::typed(factors);
        match found {
            Ok(Some(user)) => self.verify_and_decide(at, user, presented, now, None),
            // 27: the user is not registered (30 "password is incorrect" is merged into it).
            Ok(None) => self.log_identification(at, "0", &presented, 27),
            Err(e) => {
                log::error!(
                    "door {}: cannot read the users ({e}); keypad entry denied",
                    at.door
                );
                self.log_identification(at, "0", &presented, 23);
            }
        }
    }

    /// The emergency password opens the door whatever the mode and rules
    /// (event 4). The duress password opens it as if all were well (a
    /// person is being forced) and raises the duress alarm (101, rtstate
    /// alarm bit 2) for the user whose card waited for it, if any.
    fn open_by_door_password(
        &mut self,
        at: Arrival,
        kind: DoorPassword,
        pending: Option<keypad::Pending>,
        now: Instant,
    ) {
        let Some(i) = self.doors.index_of(at.door) else {
            return;
        };
        self.doors.release(i, now);
        self.doors.drive(now);
        let (pin, mut presented) = match pending {
            Some(p) => Presented::of_pending(p),
            None => ("0".to_string(), Presented::typed(0)),
        };
        presented.factors |= factor::PASSWORD;
        let event = match kind {
            DoorPassword::Emergency => 4,
            DoorPassword::Duress => {
                self.doors[i].alarms |= rtstate::alarm::DURESS_PASSWORD;
                101
            }
        };
        self.log_identification(at, &pin, &presented, event);
    }

    /// The second factor for a waiting verification: the user's password
    /// (or user ID, where the mode asks for it).
    fn complete_pending(&mut self, at: Arrival, p: keypad::Pending, typed: &str, now: Instant) {
        let (pin, mut presented) = Presented::of_pending(p);
        let user = match rules::user_by_pin(self.store.conn(), &pin) {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Deleted while waiting.
                self.log_identification(at, "0", &presented, 27);
                return;
            }
            Err(e) => {
                log::error!("door {}: cannot read user {} ({e}); denied", at.door, pin);
                self.log_identification(at, &pin, &presented, 23);
                return;
            }
        };
        let when = self.local_now();
        let mode = decide::verify_mode(self.store.conn(), at, Some(&user.pin), when);
        let wants = |f: u16| {
            presented.factors & f == 0 && mode.check(presented.factors | f) != Check::Wrong
        };
        if wants(factor::PASSWORD) && !user.password.is_empty() && typed == user.password {
            presented.factors |= factor::PASSWORD;
        } else if wants(factor::USER_ID) && typed == user.pin {
            presented.factors |= factor::USER_ID;
        } else {
            // A wrong password: 30 in older firmware, merged into 27 by Appendix 2.
            presented.factors |= factor::PASSWORD;
            self.log_identification(at, &user.pin, &presented, 27);
            return;
        }
        self.verify_and_decide(at, user, presented, now, None);
    }

    /// Checks the presented factors against the verification mode: refuses
    /// (41), waits for the rest, or decides and carries the decision out.
    fn verify_and_decide(
        &mut self,
        at: Arrival,
        user: rules::User,
        presented: Presented,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        let mode = decide::verify_mode(self.store.conn(), at, Some(&user.pin), when);
        match mode.check(presented.factors) {
            Check::Wrong => self.log_identification(at, &user.pin, &presented, 41),
            Check::NeedMore => {
                log::info!(
                    "door {}: user {} waits for the rest of a combined verification",
                    at.door,
                    user.pin
                );
                self.keypads.wait(
                    at.reader,
                    keypad::Pending {
                        pin: user.pin,
                        card: presented.card,
                        site: presented.site,
                        presented: presented.factors,
                        until: now + keypad::COMBINED_TIMEOUT,
                    },
                );
            }
            Check::Satisfied => self.decide(at, &user, &presented, now, last_edge),
        }
    }

    /// Authorises an identified, verified user, drives the lock, logs.
    fn decide(
        &mut self,
        at: Arrival,
        user: &rules::User,
        presented: &Presented,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        let conn = self.store.conn();
        let by_password = presented.factors & factor::PASSWORD != 0;
        let verdict = self
            .decision
            .authorize(conn, &self.doors, at.door, at.inout, user, when, now)
            .and_then(|v| match self.doors.index_of(at.door) {
                Some(i) => self.first_cards.apply(
                    conn,
                    i,
                    &mut self.doors[i],
                    &user.pin,
                    by_password,
                    v,
                    when,
                ),
                None => Ok(v),
            })
            .and_then(|v| {
                self.decision
                    .apply_multi_card(conn, &self.doors, at.door, user, v, now)
            });
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => {
                log::error!(
                    "door {}: cannot read the rules ({e}); user {} denied",
                    at.door,
                    user.pin
                );
                Verdict::Deny(23)
            }
        };
        if let Verdict::Grant(code) = verdict {
            if self.ask_server(at, user, presented, verdict, code, now, last_edge) {
                return;
            }
        }
        self.carry_out(at, &user.pin, presented, verdict, now, last_edge);
    }

    /// Drives the lock for a grant and logs the decision.
    fn carry_out(
        &mut self,
        at: Arrival,
        pin: &str,
        presented: &Presented,
        verdict: Verdict,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        if let Verdict::Grant(_) = verdict {
            if let Some(i) = self.doors.index_of(at.door) {
                self.doors.release(i, now);
                self.decision.granted(pin, at.door, now);
                self.doors.drive(now);
                decide::remember_passage(self.store.conn(), pin, at.door, at.inout, when);
                if let (Some(probe), Some(last_edge)) = (&self.setup.grant_probe, last_edge) {
                    let _ = probe.send(GrantTiming {
                        last_edge,
                        forwarded: self.forwarded_at,
                        received: now,
                        relay_set: Instant::now(),
                    });
                }
            }
        }
        self.log_identification(at, pin, presented, verdict.event());
    }

    /// With `AutoServerFunOn` 1 and a remote identifier, a local grant is
    /// sent to the server on a thread of its own and decided when it
    /// answers (or when [`remote::REMOTE_TIMEOUT`] passes). True when asked.
    #[allow(clippy::too_many_arguments)]
    fn ask_server(
        &mut self,
        at: Arrival,
        user: &rules::User,
        presented: &Presented,
        verdict: Verdict,
        code: u32,
        now: Instant,
        last_edge: Option<Instant>,
    ) -> bool {
        let (Some(remote), Some(tx)) = (self.setup.remote.clone(), self.answers.clone()) else {
            return false;
        };
        match rules::option_number(self.store.conn(), "AutoServerFunOn") {
            Ok(Some(1)) => {}
            Ok(_) => return false,
            Err(e) => {
                log::error!("cannot read AutoServerFunOn ({e}); deciding locally");
                return false;
            }
        }
        let record = format!(
            "time={}\tpin={}\tcardno={}\taddrtype=2\teventaddr={}\tevent={code}\tinoutstatus={}\tverifytype={}",
            self.time_text(),
            user.pin,
            presented.card,
            at.door,
            at.inout,
            verify::verifytype(presented.factors, self.new_vf_styles()),
        );
        let token = self.session_token();
        let id = self.remote.next_id();
        let spawned = std::thread::Builder::new()
            .name("engine-remote".into())
            .spawn(move || {
                let verdict = remote.identify(&record, token.as_deref(), remote::REMOTE_TIMEOUT);
                let _ = tx.send(EngineInput::Remote { id, verdict });
            });
        if let Err(e) = spawned {
            log::error!("cannot start a remote identification ({e}); deciding locally");
            return false;
        }
        self.remote.wait(
            id,
            RemotePending {
                at,
                pin: user.pin.clone(),
                presented: presented.clone(),
                local: verdict,
                until: now + remote::REMOTE_TIMEOUT,
                last_edge,
            },
        );
        true
    }

    /// The session's token (RegistryCode, SN, SessionID), if registered.
    fn session_token(&self) -> Option<String> {
        let conn = self.store.conn();
        let code = rules::option_text(conn, "RegistryCode").ok().flatten()?;
        let session = rules::option_text(conn, "SessionID").ok().flatten()?;
        Some(crate::protocol::token::token(
            &code,
            &self.setup.serial,
            &session,
        ))
    }

    /// The server answered remote identification `id`: 222 and open on
    /// SUCCESS (also running its CONTROL DEVICE line), 44 on FAILED, and on
    /// TIMEOUT or a failed request 45 followed by the local decision.
    pub(super) fn on_remote_answer(
        &mut self,
        id: u64,
        verdict: Result<remote::RemoteVerdict, String>,
        now: Instant,
    ) {
        let Some(p) = self.remote.take(id) else {
            log::info!("remote identification {id} answered after its timeout; ignored");
            return;
        };
        match verdict {
            Ok(remote::RemoteVerdict::Success { control }) => {
                self.carry_out(
                    p.at,
                    &p.pin,
                    &p.presented,
                    Verdict::Grant(222),
                    now,
                    p.last_edge,
                );
                if let Some(arg) = control {
                    match control::parse(&arg) {
                        Ok(control::ControlRequest::Door(cmd)) => {
                            let code = self.on_command(cmd, now);
                            if code != 0 {
                                log::warn!("the server's CONTROL DEVICE {arg} failed ({code})");
                            }
                        }
                        Ok(other) => log::warn!(
                            "the server's CONTROL DEVICE {arg} ({other:?}) is not a door command; ignored"
                        ),
                        Err(e) => log::warn!("the server's CONTROL DEVICE {arg}: {e}; ignored"),
                    }
                }
            }
            Ok(remote::RemoteVerdict::Failed) => {
                // 44: remote identification failed.
                self.log_identification(p.at, &p.pin, &p.presented, 44);
            }
            Ok(remote::RemoteVerdict::Timeout) => self.remote_fallback(p, now),
            Err(e) => {
                log::warn!("remote identification {id} failed ({e}); deciding locally");
                self.remote_fallback(p, now);
            }
        }
    }

    /// 45 (remote identification timed out), then the local decision.
    pub(super) fn remote_fallback(&mut self, p: RemotePending, now: Instant) {
        self.log_identification(p.at, &p.pin, &p.presented, 45);
        self.carry_out(p.at, &p.pin, &p.presented, p.local, now, p.last_edge);
    }

    /// The rtlog record of an identification (granted or not).
    pub(super) fn log_identification(
        &mut self,
        at: Arrival,
        pin: &str,
        presented: &Presented,
        event: u32,
    ) {
        // The person at the reader hears and sees the outcome before the
        // row's fsync; for a grant the lock is already driven.
        if let (Some(indicator), Some(signal)) =
            (&self.setup.indicator, super::feedback::signal_for(event))
        {
            indicator.signal(at.reader, signal);
        }
        let new_style = self.new_vf_styles();
        self.log_event(NewEvent {
            time: self.time_text(),
            pin: pin.to_string(),
            cardno: presented.card.clone(),
            sitecode: presented.site.clone(),
            linkid: 0,
            eventaddr: u32::from(at.door),
            event,
            inoutstatus: at.inout,
            // The Appendix 3 code of the factors that were presented.
            verifytype: verify::verifytype(presented.factors, new_style),
        });
    }

    /// Whether the server answered `NewVFStyles` at registration (7.1):
    /// then `verifytype` is the 16-bit string of 10.2, else the Appendix 3 code.
    fn new_vf_styles(&self) -> bool {
        match rules::option_text(self.store.conn(), "NewVFStyles") {
            Ok(Some(v)) => v.trim().bytes().any(|b| b == b'1'),
            Ok(None) => false,
            Err(e) => {
                log::error!("cannot read NewVFStyles ({e}); using Appendix 3 codes");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::handle::EngineInput;
    use crate::engine::testkit::Bench;
    use lintel_hal::{InputEvent, Timestamp};
    use std::time::Duration;

    fn card(reader: u8, number: u64) -> Option<EngineInput> {
        Some(EngineInput::Hal(
            InputEvent::CardNumber {
                reader,
                number,
                at: Timestamp::now(),
            },
            std::time::Instant::now(),
        ))
    }

    fn keys(reader: u8, keys: &str) -> Option<EngineInput> {
        Some(EngineInput::Hal(
            InputEvent::Keys {
                reader,
                keys: keys.into(),
                at: Timestamp::now(),
            },
            std::time::Instant::now(),
        ))
    }

    #[test]
    fn a_known_card_releases_its_door_and_an_unknown_one_is_logged_27() {
        let mut b = Bench::new();
        b.enrol("7", "1234");
        b.engine.step(card(1, 99));
        assert!(!b.lock_on(1));
        assert_eq!(b.events().last(), Some(&(27, 1, "0".to_string())));
        b.engine.step(card(1, 1234));
        assert!(b.lock_on(1), "released before the row was written");
        assert_eq!(b.events().last(), Some(&(0, 1, "7".to_string())));
        // DoorIntertime (2 s by default): the same card again at once is 20.
        b.engine.step(card(1, 1234));
        assert_eq!(b.events().last(), Some(&(20, 1, "7".to_string())));
        // Door 2 is not in the user's mask.
        b.engine.step(card(2, 1234));
        assert_eq!(b.events().last(), Some(&(23, 2, "7".to_string())));
        assert!(!b.lock_on(2));
        b.advance(Duration::from_secs(5));
        assert!(!b.lock_on(1), "the drive time ended");
    }

    #[test]
    fn each_decision_signals_its_reader_and_timers_signal_nothing() {
        use lintel_hal::Signal;
        let mut b = Bench::new();
        b.enrol("7", "1234");
        b.indicator.taken();
        b.engine.step(card(1, 1234));
        assert!(b.lock_on(1));
        assert_eq!(b.indicator.taken(), vec![(1, Signal::Granted)]);
        b.engine.step(card(2, 99));
        assert_eq!(b.indicator.taken(), vec![(2, Signal::Denied)]);
        // The same card again inside DoorIntertime is refused (20): red.
        b.engine.step(card(1, 1234));
        assert_eq!(b.events().last(), Some(&(20, 1, "7".to_string())));
        assert_eq!(b.indicator.taken(), vec![(1, Signal::Denied)]);
        // Door timers and device events signal no reader.
        b.advance(Duration::from_secs(5));
        assert!(b.indicator.taken().is_empty());
    }

    #[test]
    fn keypad_entries_identify_by_password_and_nothing_typed_at_a_disabled_reader_counts() {
        let mut b = Bench::new();
        b.engine
            .store
            .conn()
            .execute_batch(
                "INSERT INTO users(pin, password) VALUES ('5', '4321');
                 INSERT INTO user_authorizations(pin, timezone_id, door_mask) VALUES ('5', 1, 1);",
            )
            .unwrap();
        b.engine.step(keys(1, "4321#"));
        assert_eq!(b.events().last(), Some(&(0, 1, "5".to_string())));
        assert!(b.lock_on(1));
        b.engine.step(keys(1, "999#"));
        assert_eq!(b.events().last(), Some(&(27, 1, "0".to_string())));
        b.engine
            .store
            .conn()
            .execute(
                "INSERT INTO reader_properties(id, door_id, in_out, disable) VALUES (1, 1, 0, 1)",
                [],
            )
            .unwrap();
        b.engine.step(keys(1, "4321#"));
        assert_eq!(b.events().last(), Some(&(23, 1, "0".to_string())));
    }
}
