//! The control panel against the in-memory peripheral, on a manual clock.

use std::time::{Duration, Instant};

use super::cp::{BusController, Effect, ReaderSetup, Timing};
use super::fake::{FakeBus, FakeReader, PdEvent};
use super::message::{BuzzerCommand, BuzzerTone, LedColor, LedCommand, LedPattern};
use super::packet::{FrameReader, Packet};
use crate::event::{InputEvent, ReaderStatus};
use crate::wiegand::{decode, Decoded, Format, FormatTable, WiegandBits};

const KEY: [u8; 16] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00,
];

/// A CP and a fake bus wired together; time moves only when told.
struct Wire {
    cp: BusController,
    bus: FakeBus,
    start: Instant,
    now: Instant,
    events: Vec<(Duration, InputEvent)>,
    sent: Vec<Packet>,
    /// While set, the CP's packets are lost before they reach the bus.
    cut: bool,
}

fn setup(number: u8, address: u8, scbk: Option<[u8; 16]>, install_mode: bool) -> ReaderSetup {
    ReaderSetup {
        number,
        address,
        scbk,
        install_mode,
    }
}

impl Wire {
    fn new(readers: Vec<ReaderSetup>, fakes: Vec<FakeReader>) -> Wire {
        let start = Instant::now();
        let mut n = 0u8;
        let random = Box::new(move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                n = n.wrapping_add(37);
                *b = n;
            }
            Ok(())
        });
        Wire {
            cp: BusController::new("test", 115_200, readers, Timing::default(), random, start),
            bus: FakeBus::new(fakes),
            start,
            now: start,
            events: Vec::new(),
            sent: Vec::new(),
            cut: false,
        }
    }

    fn apply(&mut self, mut effects: Vec<Effect>) {
        while !effects.is_empty() {
            let mut next = Vec::new();
            for e in effects {
                match e {
                    Effect::Input(ev) => self.events.push((self.now - self.start, ev)),
                    Effect::Send(bytes) => {
                        let mut r = FrameReader::new();
                        r.push(&bytes);
                        if let Some(Ok(p)) = r.next_packet() {
                            self.sent.push(p);
                        }
                        if self.cut {
                            continue;
                        }
                        for (_, reply) in self.bus.on_bytes(&bytes) {
                            next.extend(self.cp.on_bytes(self.now, &reply));
                        }
                    }
                }
            }
            effects = next;
        }
    }

    /// Runs the CP for `d` in 1 ms steps.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let effects = self.cp.poll(self.now);
            self.apply(effects);
            self.now += Duration::from_millis(1);
        }
    }

    fn take_events(&mut self) -> Vec<(Duration, InputEvent)> {
        std::mem::take(&mut self.events)
    }

    fn online(&self, number: u8) -> (bool, bool) {
        let s = self
            .cp
            .snapshot()
            .into_iter()
            .find(|s| s.number == number)
            .unwrap();
        (s.online, s.secure)
    }
}

fn card_bits(n: u64) -> WiegandBits {
    Format::standard("wiegand26")
        .unwrap()
        .encode(n, None)
        .unwrap()
}

fn cards(events: &[(Duration, InputEvent)]) -> Vec<(u8, u64)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            InputEvent::Wiegand { reader, frame } => {
                match decode(frame, &FormatTable::standard()) {
                    Decoded::Card { number, .. } => Some((*reader, number)),
                    other => panic!("{other:?}"),
                }
            }
            InputEvent::CardNumber { reader, number, .. } => Some((*reader, *number)),
            _ => None,
        })
        .collect()
}

fn statuses(events: &[(Duration, InputEvent)]) -> Vec<(Duration, u8, ReaderStatus)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            InputEvent::Reader { reader, status, .. } => Some((*t, *reader, *status)),
            _ => None,
        })
        .collect()
}

#[test]
fn plain_reader_is_discovered_and_delivers_cards_keys_and_numbers() {
    let mut w = Wire::new(vec![setup(2, 101, None, false)], vec![FakeReader::new(101)]);
    w.run(Duration::from_millis(50));
    assert_eq!(w.online(2), (true, false));
    let snap = &w.cp.snapshot()[0];
    assert_eq!(snap.identity.unwrap().vendor, [0x5C, 0x26, 0x23]);
    // Discovery in order, the first command with sequence 0 to reset the reader.
    let codes: Vec<(u8, u8)> = w
        .sent
        .iter()
        .take(5)
        .map(|p| (p.code(), p.sequence()))
        .collect();
    assert_eq!(
        codes,
        vec![(0x61, 0), (0x62, 1), (0x64, 2), (0x60, 3), (0x60, 1)]
    );

    let fake = w.bus.reader(101);
    fake.events.push_back(PdEvent::Raw(card_bits(4660)));
    fake.events.push_back(PdEvent::Keys("12*#".into()));
    fake.events.push_back(PdEvent::Formatted("0004661".into()));
    fake.events.push_back(PdEvent::Formatted("12AB".into()));
    w.run(Duration::from_millis(100));
    let events = w.take_events();
    assert_eq!(cards(&events), vec![(2, 4660), (2, 4661)]);
    assert!(events.iter().any(|(_, e)| matches!(e,
        InputEvent::Keys { reader: 2, keys, .. } if keys == "12*#")));
    // No offline report for a reader that answers.
    assert!(statuses(&events).is_empty());
    // Polled about every 10 ms over the 150 ms.
    let polls = w.bus.reader(101).polls;
    assert!((13..=16).contains(&polls), "{polls}");
}

#[test]
fn several_readers_share_the_bus_by_address() {
    let mut w = Wire::new(
        vec![
            setup(1, 1, None, false),
            setup(2, 9, Some(KEY), false),
            setup(3, 126, None, false),
        ],
        vec![
            FakeReader::new(1),
            FakeReader::new(9).with_key(KEY),
            FakeReader::new(126),
        ],
    );
    w.run(Duration::from_millis(100));
    assert_eq!(
        (w.online(1), w.online(2), w.online(3)),
        ((true, false), (true, true), (true, false))
    );
    w.bus
        .reader(9)
        .events
        .push_back(PdEvent::Raw(card_bits(99)));
    w.bus
        .reader(126)
        .events
        .push_back(PdEvent::Raw(card_bits(100)));
    w.run(Duration::from_millis(50));
    let mut got = cards(&w.take_events());
    got.sort();
    assert_eq!(got, vec![(2, 99), (3, 100)]);
    assert!(w.sent.iter().all(|p| [1, 9, 126].contains(&p.address())));
}

#[test]
fn a_silent_reader_is_reported_offline_once_and_online_when_it_answers() {
    let mut w = Wire::new(vec![setup(1, 5, None, false)], vec![FakeReader::new(5)]);
    w.run(Duration::from_millis(100));
    assert_eq!(w.online(1), (true, false));
    w.bus.reader(5).faults.silent = true;
    let went_silent = w.now - w.start;
    w.run(Duration::from_secs(12));
    let s = statuses(&w.take_events());
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].2, ReaderStatus::Offline);
    let after = s[0].0 - went_silent;
    // 3 s after the last answered poll (at most one poll interval before the silence).
    assert!(
        after >= Duration::from_millis(2980) && after < Duration::from_secs(4),
        "{after:?}"
    );
    // Probed every 2 s meanwhile, not hammered.
    let probes = w.sent.iter().filter(|p| p.code() == 0x61).count();
    assert!((6..=9).contains(&probes), "{probes}");

    w.bus.reader(5).faults.silent = false;
    let back = w.now - w.start;
    w.run(Duration::from_secs(5));
    let s = statuses(&w.take_events());
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].2, ReaderStatus::Online);
    assert!(
        s[0].0 - back <= Duration::from_millis(2100),
        "{:?}",
        s[0].0 - back
    );
    assert_eq!(w.online(1), (true, false));
}

#[test]
fn a_reader_that_never_answers_is_reported_offline_at_start() {
    let mut w = Wire::new(vec![setup(1, 5, None, false)], vec![]);
    w.run(Duration::from_secs(10));
    let s = statuses(&w.take_events());
    assert_eq!(
        s.iter().map(|x| x.2).collect::<Vec<_>>(),
        vec![ReaderStatus::Offline]
    );
    assert!(s[0].0 >= Duration::from_secs(3) && s[0].0 < Duration::from_secs(4));
}

#[test]
fn lost_commands_are_resent_with_the_same_sequence_number() {
    let mut w = Wire::new(vec![setup(1, 5, None, false)], vec![FakeReader::new(5)]);
    w.run(Duration::from_millis(50));
    let before = w.sent.len();
    w.cut = true;
    w.run(Duration::from_millis(300));
    w.cut = false;
    w.run(Duration::from_millis(200));
    let tail: Vec<&Packet> = w.sent[before..].iter().collect();
    // The poll that was lost went out again, byte for byte, and was then answered.
    assert_eq!(tail[0].bytes(), tail[1].bytes());
    assert_eq!(tail[0].code(), 0x60);
    assert_eq!(w.online(1), (true, false));
    assert!(w.cp.snapshot()[0].counters.resent >= 1);
    assert!(statuses(&w.take_events()).is_empty());
}

#[test]
fn damaged_replies_are_refused_and_asked_again() {
    let mut w = Wire::new(vec![setup(1, 5, None, false)], vec![FakeReader::new(5)]);
    w.run(Duration::from_millis(50));
    let fake = w.bus.reader(5);
    fake.faults.corrupt_replies = 1;
    fake.events.push_back(PdEvent::Raw(card_bits(31)));
    w.run(Duration::from_millis(50));
    // The card came once, from the intact resend, not from the damaged copy.
    assert_eq!(cards(&w.take_events()), vec![(1, 31)]);
    let c = w.cp.snapshot()[0].counters;
    assert_eq!((c.corrupt, c.resent), (1, 1));
}

#[test]
fn secure_channel_carries_cards_and_feedback_encrypted() {
    let mut w = Wire::new(
        vec![setup(1, 3, Some(KEY), false)],
        vec![FakeReader::new(3).with_key(KEY)],
    );
    w.run(Duration::from_millis(50));
    assert_eq!(w.online(1), (true, true));
    assert!(w.bus.reader(3).secure());
    let led = LedCommand {
        led: 0,
        temporary: None,
        permanent: Some(LedPattern::steady(LedColor::Green)),
    };
    assert!(w.cp.led(1, led));
    assert!(w.cp.buzzer(
        1,
        BuzzerCommand {
            tone: BuzzerTone::Default,
            on_100ms: 2,
            off_100ms: 0,
            count: 1
        }
    ));
    assert!(!w.cp.led(9, led), "no reader 9 on this bus");
    w.bus
        .reader(3)
        .events
        .push_back(PdEvent::Raw(card_bits(4242)));
    w.run(Duration::from_millis(50));
    assert_eq!(cards(&w.take_events()), vec![(1, 4242)]);
    let received = w.bus.reader(3).received.clone();
    assert_eq!(
        received,
        vec![
            (0x69, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 2]),
            (0x6A, vec![0, 2, 2, 0, 1])
        ]
    );
    // On the wire after set-up: every command MACed, data blocks encrypted.
    let after: Vec<&Packet> = w
        .sent
        .iter()
        .skip_while(|p| p.code() != 0x77)
        .skip(1)
        .collect();
    assert!(!after.is_empty());
    for p in after {
        let kind = p.security().map(|(k, _)| k);
        assert!(matches!(kind, Some(0x15) | Some(0x17)), "{kind:?}");
        assert!(p.mac().is_some());
        if p.code() == 0x69 {
            assert_eq!(kind, Some(0x17));
            assert_eq!(p.data().len(), 16);
        }
    }
}

#[test]
fn a_wrong_mac_is_refused_and_the_session_rebuilt() {
    let mut w = Wire::new(
        vec![setup(1, 3, Some(KEY), false)],
        vec![FakeReader::new(3).with_key(KEY)],
    );
    w.run(Duration::from_millis(50));
    let fake = w.bus.reader(3);
    fake.faults.bad_macs = 1;
    fake.events.push_back(PdEvent::Raw(card_bits(1)));
    w.run(Duration::from_millis(100));
    // The card in the forged reply never reached the engine.
    assert!(cards(&w.take_events()).is_empty());
    assert_eq!(w.cp.snapshot()[0].counters.bad_mac, 1);
    assert_eq!(w.online(1), (true, true));
    w.bus.reader(3).events.push_back(PdEvent::Raw(card_bits(2)));
    w.run(Duration::from_millis(50));
    assert_eq!(cards(&w.take_events()), vec![(1, 2)]);
}

#[test]
fn plain_card_data_from_a_keyed_reader_is_refused() {
    let mut w = Wire::new(
        vec![setup(1, 3, Some(KEY), false)],
        vec![FakeReader::new(3).with_key(KEY)],
    );
    w.run(Duration::from_millis(50));
    let fake = w.bus.reader(3);
    fake.faults.plain_cards = true;
    fake.events.push_back(PdEvent::Raw(card_bits(5)));
    fake.events.push_back(PdEvent::Keys("1#".into()));
    w.run(Duration::from_millis(200));
    let events = w.take_events();
    assert!(cards(&events).is_empty());
    assert!(!events
        .iter()
        .any(|(_, e)| matches!(e, InputEvent::Keys { .. })));
    assert!(w.cp.snapshot()[0].counters.refused_plain >= 2);
}

#[test]
fn a_wrong_key_keeps_the_reader_out_and_is_reported_offline() {
    let mut w = Wire::new(
        vec![setup(1, 3, Some(KEY), false)],
        vec![FakeReader::new(3).with_key([0x42; 16])],
    );
    w.bus.reader(3).events.push_back(PdEvent::Raw(card_bits(5)));
    w.run(Duration::from_secs(5));
    let events = w.take_events();
    assert!(cards(&events).is_empty());
    assert_eq!(w.online(1), (false, false));
    assert_eq!(
        statuses(&events).iter().map(|s| s.2).collect::<Vec<_>>(),
        vec![ReaderStatus::Offline]
    );
    // No poll ever went to it, so it had no chance to hand over card data.
    assert!(w.sent.iter().all(|p| p.code() != 0x60));
    // And the default key was never tried: install mode is off.
    assert!(w
        .sent
        .iter()
        .filter(|p| p.code() == 0x76)
        .all(|p| p.security().unwrap().1 == [1]));
}

#[test]
fn the_default_key_is_used_only_with_install_mode_to_install_the_board_key() {
    // A new reader: no key of its own, in install mode.
    let mut new_reader = FakeReader::new(3);
    new_reader.install_mode = true;
    let mut w = Wire::new(
        vec![setup(1, 3, Some(KEY), false)],
        vec![new_reader.clone()],
    );
    w.run(Duration::from_secs(1));
    assert_eq!(
        w.online(1),
        (false, false),
        "SCBK-D is not used without install_mode"
    );

    let mut w = Wire::new(vec![setup(1, 3, Some(KEY), true)], vec![new_reader]);
    w.run(Duration::from_millis(100));
    assert_eq!(w.online(1), (true, true));
    let fake = w.bus.reader(3);
    assert_eq!(fake.scbk, Some(KEY), "the board's key was installed");
    assert!(!fake.install_mode);
    // The last handshake used the board's key, not the default one.
    let last = w.sent.iter().rev().find(|p| p.code() == 0x76).unwrap();
    assert_eq!(last.security().unwrap().1, [1]);
    assert!(w.sent.iter().any(|p| p.code() == 0x75));
}

#[test]
fn tamper_and_power_changes_become_reader_events() {
    let mut w = Wire::new(vec![setup(4, 5, None, false)], vec![FakeReader::new(5)]);
    w.bus.reader(5).tamper = true; // found tampered at discovery
    w.run(Duration::from_millis(50));
    let fake = w.bus.reader(5);
    fake.tamper = false;
    fake.power_failure = true;
    fake.events.push_back(PdEvent::Status);
    w.run(Duration::from_millis(50));
    let s: Vec<ReaderStatus> = statuses(&w.take_events()).iter().map(|s| s.2).collect();
    assert_eq!(
        s,
        vec![
            ReaderStatus::Tampered,
            ReaderStatus::TamperCleared,
            ReaderStatus::PowerFailed
        ]
    );
}

#[test]
fn feedback_a_reader_does_not_support_is_not_sent_again() {
    let mut fake = FakeReader::new(5);
    fake.rejects.push(0x69);
    let mut w = Wire::new(vec![setup(1, 5, None, false)], vec![fake]);
    w.run(Duration::from_millis(50));
    for _ in 0..3 {
        w.cp.led(1, LedCommand::default());
        w.run(Duration::from_millis(30));
    }
    let leds = w.sent.iter().filter(|p| p.code() == 0x69).count();
    assert_eq!(leds, 1, "sent once, refused with NAK 3, then no more");
    assert_eq!(
        w.online(1),
        (true, false),
        "a refused command does not drop the reader"
    );
    assert!(statuses(&w.take_events()).is_empty());
}
