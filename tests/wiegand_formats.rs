//! Wiegand formats named as ZKTeco names them, end to end: the reference
//! server enrols users, the sim reader sends frames in the board's format
//! through the HAL's capture, and the engine decides and reports.
//!
//! What is compared with a user's `CardNo` is the card bits alone; the site
//! code goes to the event's `sitecode` and restricts the match only when a
//! format with a nonzero `SiteCode` says so (hal/src/wiegand/named.rs).

mod common;
mod engine_common;

use engine_common::{authorize_cmd, interval, monday_nine, timezone_cmd, user_cmd, Rig};
use lintel_hal::sim::SimRequest;
use lintel_hal::wiegand::Format;
use lintel_refserver::Record;

const ALWAYS: u32 = 1;

fn enrol_always(rig: &Rig, users: &[(&str, u64)]) {
    let mut commands = vec![
        timezone_cmd(ALWAYS, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], interval(0, 2359)),
        // Every swipe counts, however close to the previous one.
        "SET OPTIONS Door1Intertime=0".to_string(),
    ];
    for (pin, card) in users {
        commands.push(user_cmd(pin, *card, ""));
        commands.push(authorize_cmd(pin, ALWAYS, 15));
    }
    rig.enrol(&commands);
}

/// (event, pin, cardno, sitecode) of every scenario event, in order.
fn outcomes(rig: &Rig) -> Vec<(String, String, String, String)> {
    rig.scenario_events()
        .iter()
        .map(|r: &Record| {
            let f = |k| r.get(k).unwrap_or("").to_string();
            (f("event"), f("pin"), f("cardno"), f("sitecode"))
        })
        .collect()
}

fn row(event: &str, pin: &str, card: &str, site: &str) -> (String, String, String, String) {
    (event.into(), pin.into(), card.into(), site.into())
}

fn swipe_with_site(rig: &Rig, card: u64, site: u32) {
    rig.sim_and_wait(
        SimRequest::Swipe {
            reader: 1,
            card,
            site: Some(site),
        },
        1,
    );
}

#[test]
fn card_123456_enrolled_by_the_server_opens_door_1_on_the_default_26_bit_reader() {
    let rig = Rig::start();
    enrol_always(&rig, &[("7", 123_456)]);
    rig.swipe(1, 123_456);
    rig.wait_events("0", 1);
    rig.engine_sync();
    assert!(rig.state().locks[0], "door 1 released");
    // Beyond 16 bits too: the largest number 24 card bits hold.
    enrol_always(&rig, &[("8", 0xff_ffff)]);
    rig.swipe(1, 0xff_ffff);
    rig.wait_events("0", 2);
    assert_eq!(
        outcomes(&rig),
        [row("0", "7", "123456", "0"), row("0", "8", "16777215", "0")]
    );
}

/// sim-4door with every reader set to ZK's Wiegand26a (8-bit site, 16-bit card).
fn board_26a(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("sim-4door-26a.toml");
    std::fs::write(
        &path,
        format!(
            "inherit = \"{}\"\nname = \"sim-4door-26a\"\n[defaults]\nwiegand_format = \"wiegand26a\"\n",
            common::board_path("sim-4door.toml").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_26a_board_reads_site_and_card_as_zk_does_and_matches_the_card_bits_alone() {
    let boards = tempfile::tempdir().unwrap();
    let server = common::start_server(common::quick_server_config());
    let rig = Rig::start_on_board(
        server,
        tempfile::tempdir().unwrap(),
        monday_nine(),
        board_26a(boards.path()),
    );
    // Pin 8 is enrolled with the 16-bit card number, pin 9 with the whole
    // 24-bit number the same card sends (site 1 × 65536 + 57920 = 123456).
    enrol_always(&rig, &[("8", 57_920), ("9", 123_456)]);
    swipe_with_site(&rig, 57_920, 1);
    rig.wait_events("0", 1);
    // The frame a 26-bit reader sends for 123456 is, in 26a terms, site 1 and
    // card 57920: it is pin 8's card, not pin 9's.
    let bits = Format::standard("wiegand26")
        .unwrap()
        .encode(123_456, None)
        .unwrap();
    rig.sim_and_wait(
        SimRequest::Wiegand {
            reader: 1,
            bits: bits.to_string(),
        },
        1,
    );
    // Another site with the same card bits is the same card: no format
    // restricts the site yet.
    swipe_with_site(&rig, 57_920, 2);
    rig.wait_events("0", 3);

    // A server format with SiteCode=1 on reader 1: a card of site 2 matches no
    // format there (42), site 1 still opens.
    rig.enrol(&[
        "DATA UPDATE WGFormat ID=3\tCardBit=26\tSiteCode=1\tFormatName=Site 1\tCardFormat=pssssssssccccccccccccccccp:eeeeeeeeeeeeeooooooooooooo".into(),
        "DATA UPDATE ReaderWGFormat ReaderID=1\tDevID=1\tWGFormatID=3\tParityVerifyDisable=0\tReversalType=0".into(),
    ]);
    swipe_with_site(&rig, 57_920, 2);
    rig.wait_events("42", 1);
    swipe_with_site(&rig, 57_920, 1);
    rig.wait_events("0", 4);
    assert_eq!(
        outcomes(&rig),
        [
            row("0", "8", "57920", "1"),
            row("0", "8", "57920", "1"),
            row("0", "8", "57920", "2"),
            row("42", "0", "0", "0"),
            row("0", "8", "57920", "1"),
        ]
    );
}
