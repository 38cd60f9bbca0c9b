//! lintel's OSDP control panel against an independent peer: LibOSDP (its Python binding,
//! `pip install libosdp`) as the peripheral on a pseudo-terminal that a sim board opens
//! as its RS-485 bus. Every test name contains `_a_pty`: qemu-user cannot do termios on
//! ptys, so the ARM stage skips them (scripts/ci-arm.sh).

mod libosdp;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use libosdp::LibOsdpPd;
use lintel_hal::board::BoardConfig;
use lintel_hal::osdp::{BuzzerCommand, BuzzerTone, LedColor, LedCommand, LedFlash, LedPattern};
use lintel_hal::wiegand::{decode, Decoded, Format, FormatTable};
use lintel_hal::{InputEvent, ReaderStatus};

const KEY: &str = "00112233445566778899aabbccddeeff";

fn board(device: &std::path::Path, address: u8, reader_extra: &str) -> BoardConfig {
    BoardConfig::from_toml_str(&format!(
        r#"
name = "osdp-test"
backend = "sim"
[[door]]
number = 1
lock = {{ chip = "sim", line = 1 }}
[[reader]]
number = 1
door = 1
direction = "in"
kind = "osdp"
bus = "rs485-1"
address = {address}
{reader_extra}
[[serial]]
name = "rs485-1"
device = "{}"
baud = 115200
parity = "none"
direction = "none"
"#,
        device.display()
    ))
    .expect("board")
}

struct Rig {
    hal: lintel_hal::Hal,
    events: Receiver<InputEvent>,
    _dir: tempfile::TempDir,
}

fn open(board: &BoardConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (tx, events) = std::sync::mpsc::channel();
    let hal = lintel_hal::open(board, dir.path(), tx).expect("HAL opens the pty");
    Rig {
        hal,
        events,
        _dir: dir,
    }
}

impl Rig {
    /// Waits for the reader to be online (and secure, if `secure`).
    fn wait_online(&self, secure: bool, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.hal.feedback.status(1, Duration::from_secs(1)) {
                if s.online && s.secure == secure {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "reader 1 not online (secure {secure}): {:?}",
            self.hal.feedback.status(1, Duration::from_secs(1))
        );
    }

    /// The next event that `pick` accepts, within `timeout`.
    fn next<T>(&self, timeout: Duration, pick: impl Fn(InputEvent) -> Option<T>) -> Option<T> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) => {
                    if let Some(t) = pick(ev) {
                        return Some(t);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    fn card(&self, timeout: Duration) -> Option<u64> {
        self.next(timeout, |ev| match ev {
            InputEvent::Wiegand { reader: 1, frame } => {
                match decode(&frame, &FormatTable::standard()) {
                    Decoded::Card { number, .. } => Some(number),
                    other => panic!("the card's bits did not decode: {other:?}"),
                }
            }
            _ => None,
        })
    }

    fn status(&self, timeout: Duration) -> Option<ReaderStatus> {
        self.next(timeout, |ev| match ev {
            InputEvent::Reader {
                reader: 1, status, ..
            } => Some(status),
            _ => None,
        })
    }
}

fn bits(card: u64) -> String {
    Format::standard("wiegand26")
        .unwrap()
        .encode(card, None)
        .unwrap()
        .to_string()
}

const T: Duration = Duration::from_secs(10);

#[test]
fn discovery_cards_keys_and_feedback_in_plain_text_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(101, None, &[]) else {
        return;
    };
    let rig = open(&board(&pd.device, 101, ""));
    rig.wait_online(false, T);
    // osdp_PDID from LibOSDP's default identity (vendor 0xcafebabe, serial 0xdeadbeaf).
    let s = rig.hal.feedback.status(1, T).unwrap();
    let id = s.identity.expect("osdp_ID answered");
    assert_eq!(id.vendor, [0xBE, 0xBA, 0xFE]);
    assert_eq!(id.serial, 0xDEAD_BEAF);

    pd.card(&bits(4660));
    assert_eq!(rig.card(T), Some(4660));
    pd.keys("1234#");
    let keys = rig.next(T, |ev| match ev {
        InputEvent::Keys {
            reader: 1, keys, ..
        } => Some(keys),
        _ => None,
    });
    assert_eq!(keys.as_deref(), Some("1234#"));

    rig.hal
        .feedback
        .led(
            1,
            LedCommand {
                led: 0,
                temporary: Some(LedFlash {
                    pattern: LedPattern {
                        on_color: LedColor::Green,
                        off_color: LedColor::Off,
                        on_100ms: 3,
                        off_100ms: 2,
                    },
                    duration_100ms: 20,
                }),
                permanent: None,
            },
        )
        .unwrap();
    rig.hal
        .feedback
        .buzzer(
            1,
            BuzzerCommand {
                tone: BuzzerTone::Default,
                on_100ms: 2,
                off_100ms: 1,
                count: 2,
            },
        )
        .unwrap();
    let led = pd
        .wait_command(T, |c| {
            c.get("on_color").is_some() && c.get("timer_count").is_some()
        })
        .expect("LibOSDP received the osdp_LED");
    assert_eq!(led["on_color"], 2);
    assert_eq!(led["on_count"], 3);
    assert_eq!(led["off_count"], 2);
    assert_eq!(led["timer_count"], 20);
    assert_eq!(led["temporary"], true);
    let buz = pd
        .wait_command(T, |c| c.get("rep_count").is_some())
        .expect("LibOSDP received the osdp_BUZ");
    assert_eq!(
        (buz["control_code"].as_u64(), buz["rep_count"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (buz["on_count"].as_u64(), buz["off_count"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        rig.hal.feedback.led(2, LedCommand::default()).is_err(),
        "no reader 2"
    );
}

#[test]
fn secure_channel_with_the_board_key_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(7, Some(KEY), &["--enforce-secure"]) else {
        return;
    };
    let rig = open(&board(&pd.device, 7, &format!("scbk = \"{KEY}\"")));
    rig.wait_online(true, T);
    assert!(pd.sc_active(), "LibOSDP agrees the Secure Channel is up");
    pd.card(&bits(777));
    assert_eq!(rig.card(T), Some(777));
    pd.keys("9*");
    let keys = rig.next(T, |ev| match ev {
        InputEvent::Keys { keys, .. } => Some(keys),
        _ => None,
    });
    assert_eq!(keys.as_deref(), Some("9*"));
    rig.hal
        .feedback
        .led(
            1,
            LedCommand {
                led: 0,
                temporary: None,
                permanent: Some(LedPattern::steady(LedColor::Red)),
            },
        )
        .unwrap();
    let led = pd
        .wait_command(T, |c| c.get("on_color").is_some())
        .expect("LibOSDP decrypted the osdp_LED");
    assert_eq!(
        (led["on_color"].as_u64(), led["temporary"].as_bool()),
        (Some(1), Some(false))
    );
}

#[test]
fn install_mode_puts_the_board_key_into_a_new_reader_over_a_pty() {
    // No key: LibOSDP is in install mode and accepts only SCBK-D.
    let Some(mut pd) = LibOsdpPd::spawn(9, None, &[]) else {
        return;
    };
    let rig = open(&board(
        &pd.device,
        9,
        &format!("scbk = \"{KEY}\"\ninstall_mode = true"),
    ));
    rig.wait_online(true, T);
    let keyset = pd
        .wait_command(T, |c| c.get("type").is_some() && c.get("data").is_some())
        .expect("LibOSDP received osdp_KEYSET");
    assert_eq!(keyset["data"], KEY);
    assert!(pd.sc_active());
    pd.card(&bits(31));
    assert_eq!(rig.card(T), Some(31));
}

#[test]
fn a_reader_with_another_key_is_kept_out_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(9, Some("ffeeddccbbaa99887766554433221100"), &[]) else {
        return;
    };
    let rig = open(&board(&pd.device, 9, &format!("scbk = \"{KEY}\"")));
    pd.card(&bits(5));
    assert_eq!(rig.status(T), Some(ReaderStatus::Offline));
    let s = rig.hal.feedback.status(1, T).unwrap();
    assert!(!s.online && !s.secure, "{s:?}");
    assert!(!pd.sc_active());
    assert_eq!(rig.card(Duration::from_secs(1)), None);
}

#[test]
fn a_reader_that_falls_silent_goes_offline_and_comes_back_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(3, Some(KEY), &[]) else {
        return;
    };
    let rig = open(&board(&pd.device, 3, &format!("scbk = \"{KEY}\"")));
    rig.wait_online(true, T);
    pd.set("silent", true.into());
    let cut = Instant::now();
    assert_eq!(
        rig.status(Duration::from_secs(15)),
        Some(ReaderStatus::Offline)
    );
    let offline_after = cut.elapsed();
    assert!(offline_after < Duration::from_secs(10), "{offline_after:?}");
    pd.set("silent", false.into());
    let back = Instant::now();
    assert_eq!(
        rig.status(Duration::from_secs(15)),
        Some(ReaderStatus::Online)
    );
    assert!(
        back.elapsed() < Duration::from_secs(10),
        "{:?}",
        back.elapsed()
    );
    rig.wait_online(true, T);
    pd.card(&bits(88));
    assert_eq!(rig.card(T), Some(88));
}

#[test]
fn tamper_reports_reach_the_engine_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(4, None, &[]) else {
        return;
    };
    let rig = open(&board(&pd.device, 4, ""));
    rig.wait_online(false, T);
    pd.set("tamper", true.into());
    assert_eq!(rig.status(T), Some(ReaderStatus::Tampered));
    pd.set("tamper", false.into());
    assert_eq!(rig.status(T), Some(ReaderStatus::TamperCleared));
}

#[test]
fn damaged_frames_and_wrong_macs_are_refused_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(5, Some(KEY), &[]) else {
        return;
    };
    let rig = open(&board(&pd.device, 5, &format!("scbk = \"{KEY}\"")));
    rig.wait_online(true, T);

    pd.set("corrupt", 3.into());
    std::thread::sleep(Duration::from_millis(500));
    rig.wait_online(true, T);
    let c = rig.hal.feedback.status(1, T).unwrap().counters;
    assert!(c.corrupt >= 1, "{c:?}");

    pd.set("bad_mac", 1.into());
    std::thread::sleep(Duration::from_millis(500));
    rig.wait_online(true, T);
    let c = rig.hal.feedback.status(1, T).unwrap().counters;
    assert!(c.bad_mac >= 1, "{c:?}");

    // Whatever was lost with the refused frames, nothing false came through, and the
    // link carries cards again.
    while let Ok(ev) = rig.events.try_recv() {
        assert!(!matches!(ev, InputEvent::Wiegand { .. }), "{ev:?}");
    }
    pd.card(&bits(1234));
    assert_eq!(rig.card(T), Some(1234));
}

#[test]
fn a_reader_that_insists_on_the_secure_channel_needs_a_key_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(6, Some(KEY), &["--enforce-secure"]) else {
        return;
    };
    let rig = open(&board(&pd.device, 6, ""));
    pd.card(&bits(6));
    assert_eq!(rig.status(T), Some(ReaderStatus::Offline));
    assert_eq!(rig.card(Duration::from_secs(1)), None);
}
