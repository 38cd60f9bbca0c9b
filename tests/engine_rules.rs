//! Scenario tests of the stateful rules: anti-passback held across a restart.

mod common;
mod engine_common;

use engine_common::*;
use std::time::Duration;

#[test]
fn in_apb_refuses_a_second_entry_also_after_a_restart() {
    let mut rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("7", 4242, ""),
        authorize_cmd("7", 1, 1),
        "SET OPTIONS Door1InOutAntiPassback=1".into(),
    ]);
    rig.swipe(1, 4242); // reader 1 is door 1's entry reader
    rig.wait_events("0", 1);
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 4242);
    let refused = rig.wait_events("24", 1);
    assert_record(
        &refused[0],
        &[
            ("time", "2024-05-06 09:00:05"),
            ("pin", "7"),
            ("cardno", "4242"),
            ("sitecode", "0"),
            ("linkid", "0"),
            ("eventaddr", "1"),
            ("event", "24"),
            ("inoutstatus", "0"),
            ("verifytype", "4"),
        ],
    );
    rig.engine_sync();
    rig.advance(Duration::from_secs(5));
    assert!(!rig.state().locks[0], "the refused entry did not open");

    // A power cycle keeps the user "inside".
    rig.restart_firmware();
    assert!(common::wait_online(&rig.server));
    rig.swipe(1, 4242);
    assert_eq!(rig.wait_events("24", 2).len(), 2);
    rig.engine_sync();
    assert!(!rig.state().locks[0]);
    assert_eq!(rig.events("0").len(), 1);
}
