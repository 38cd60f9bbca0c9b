//! Provisioning the way deployed servers do it (issue 10), through the real
//! session, the engine and the sim HAL against the reference server: command
//! IDs that start again at 1, user records with fields of other panels,
//! permissions without a door, and no time zone ever sent.

mod common;
mod engine_common;

use common::{PATIENCE, SN};
use engine_common::*;
use lintel_refserver::commands;

const CARD: u64 = 4660;
const PIN: &str = "1001";

/// Queues `commands` and waits for the result of each among the results that
/// arrive from now on (after a renumbering, old results carry the same IDs).
fn run_fresh(rig: &Rig, commands: &[String]) -> Vec<i64> {
    let before = rig.server.results(SN).len();
    let ids: Vec<String> = commands
        .iter()
        .map(|c| rig.server.queue_command(SN, c).to_string())
        .collect();
    let done = rig.server.wait_for(PATIENCE, |s| {
        let new = &s.results(SN)[before.min(s.results(SN).len())..];
        ids.iter().all(|id| new.iter().any(|r| &r.id == id))
    });
    assert!(done, "results for {commands:?}");
    let new = rig.server.results(SN).split_off(before);
    ids.iter()
        .map(|id| new.iter().rev().find(|r| &r.id == id).unwrap().ret)
        .collect()
}

/// The server restarts with an empty memory: it forgets the device's
/// registration and numbers its commands from 1 again.
fn restart_server_from_scratch(rig: &Rig) {
    rig.server.stop();
    rig.server.forget_registrations();
    rig.server.renumber_commands();
    rig.server.restart().expect("server restarts");
}

/// Presents the card at reader 1 and returns the event code logged for it.
fn swipe_event(rig: &Rig) -> String {
    swipe_at(rig, 1).get("event").unwrap_or("?").to_owned()
}

/// Presents the card at `reader` and returns the record logged for it. A
/// frame the sim garbled (42, incorrect Wiegand format: on a machine loaded
/// enough, the sim's bits can straddle the frame gap) is presented again:
/// Wiegand timing is not what these tests are about.
fn swipe_at(rig: &Rig, reader: u8) -> lintel_refserver::Record {
    loop {
        let before = rig.scenario_events().len();
        rig.swipe(reader, CARD);
        assert!(rig.server.wait_for(PATIENCE, |s| {
            s.rtlog(SN)
                .iter()
                .filter(|r| !matches!(r.get("event"), Some("206" | "214" | "105")))
                .count()
                > before
        }));
        let record = rig.scenario_events().swap_remove(before);
        if record.get("event") != Some("42") {
            return record;
        }
    }
}

fn always() -> String {
    timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], interval(0, 2359))
}

#[test]
fn a_revocation_under_an_id_the_restarted_server_numbers_again_takes_effect() {
    let rig = Rig::start();
    // Old numbering: C:1 the user, C:2 the permission, C:3 time rule 1.
    let grant = vec![user_cmd(PIN, CARD, ""), authorize_cmd(PIN, 1, 1), always()];
    assert_eq!(run_fresh(&rig, &grant), [0, 0, 0]);
    assert_eq!(swipe_event(&rig), "0", "granted");

    // The device is power-cycled, then the server restarts from scratch:
    // the device registers again and the server's new C:2 is a revocation.
    let mut rig = rig;
    rig.restart_firmware();
    restart_server_from_scratch(&rig);
    let revoke = vec![
        "SET OPTIONS Door1Drivertime=5".to_string(),
        format!("DATA DELETE userauthorize Pin={PIN}"),
    ];
    assert_eq!(run_fresh(&rig, &revoke), [0, 0]);
    // The new C:1 ran as itself: its result is not the old C:1's.
    let results = rig.server.results(SN);
    let new_1 = results.iter().rev().find(|r| r.id == "1").unwrap();
    assert_eq!(new_1.cmd, "SET OPTIONS", "{results:?}");
    rig.advance(std::time::Duration::from_secs(10));
    assert_eq!(swipe_event(&rig), "23", "the person is denied at the door");
}

#[test]
fn the_same_revocation_under_the_same_id_is_applied_again() {
    let rig = Rig::start();
    // C:1 user, C:2 rule 1, C:3 grant, C:4 revoke, C:5 grant again.
    let history = vec![
        user_cmd(PIN, CARD, ""),
        always(),
        authorize_cmd(PIN, 1, 1),
        format!("DATA DELETE userauthorize Pin={PIN}"),
        authorize_cmd(PIN, 1, 1),
    ];
    assert_eq!(run_fresh(&rig, &history), [0; 5]);
    assert_eq!(swipe_event(&rig), "0", "granted again by C:5");

    // A server restored from a backup replays its queue from C:1: C:1-C:3
    // are the commands already run (answered from their results), C:4 is
    // the same revocation, which is never skipped.
    restart_server_from_scratch(&rig);
    assert_eq!(run_fresh(&rig, &history[..4]), [0; 4]);
    rig.advance(std::time::Duration::from_secs(10));
    assert_eq!(swipe_event(&rig), "23", "the revocation was applied again");
}

#[test]
fn a_command_repeated_with_its_id_and_text_is_answered_without_running_again() {
    let rig = Rig::start();
    assert_eq!(
        run_fresh(&rig, &[user_cmd(PIN, CARD, ""), always()]),
        [0, 0]
    );
    // The server lost C:3's result and offers it again after a restart;
    // meanwhile C:4 took the permission away. Running C:3 again would
    // re-grant it: it is answered from its stored result instead.
    let grant = authorize_cmd(PIN, 1, 1);
    assert_eq!(run_fresh(&rig, std::slice::from_ref(&grant)), [0]);
    assert_eq!(
        run_fresh(&rig, &[format!("DATA DELETE userauthorize Pin={PIN}")]),
        [0]
    );
    rig.server.queue_command_with_id(SN, "3", &grant);
    let before = rig.server.results(SN).len();
    assert!(rig
        .server
        .wait_for(PATIENCE, |s| s.results(SN).len() > before));
    let again = &rig.server.results(SN)[before];
    assert_eq!((again.id.as_str(), again.ret), ("3", 0));
    assert_eq!(swipe_event(&rig), "23", "C:3 did not run a second time");
}

#[test]
fn a_deployed_servers_enrolment_opens_the_door() {
    let mut server_cfg = common::quick_server_config();
    // The server adds the C3 user fields to every user record it sends.
    server_cfg.extra_user_fields = vec![
        ("SuperAuthorize".into(), "0".into()),
        ("Disable".into(), "0".into()),
    ];
    let rig = Rig::start_in(
        common::start_server(server_cfg),
        tempfile::tempdir().unwrap(),
        monday_nine(),
    );
    // The user record with C3's extra fields, `AuthorizeTimezoneId=1`
    // without a door, and never a `timezone`: factory rule 1 applies.
    let enrol = commands::deployed_enrolment(PIN, CARD, "Alice Smith");
    assert_eq!(run_fresh(&rig, &enrol), [0, 0]);
    assert_eq!(swipe_event(&rig), "0", "door 1 opens");
    rig.advance(std::time::Duration::from_secs(10));
    // Every door of the device: reader 4 is door 4's.
    let at_4 = swipe_at(&rig, 4);
    assert_eq!(
        (at_4.get("event"), at_4.get("eventaddr")),
        (Some("0"), Some("4"))
    );
}

#[test]
fn superauthorize_in_a_c3_user_record_makes_a_super_user_on_every_door() {
    let rig = Rig::start();
    let super_user =
        commands::c3_user(PIN, CARD, "Root").replace("SuperAuthorize=0", "SuperAuthorize=1");
    // No permission at all: the flag alone opens every door.
    assert_eq!(run_fresh(&rig, &[super_user]), [0]);
    assert_eq!(swipe_event(&rig), "208");
    let at_3 = swipe_at(&rig, 3);
    assert_eq!(
        (at_3.get("event"), at_3.get("eventaddr")),
        (Some("208"), Some("3"))
    );
    // SuperAuthorize=0 takes it away again; an invalid value is refused.
    let plain = commands::c3_user(PIN, CARD, "Root");
    let bad = plain.replace("SuperAuthorize=0", "SuperAuthorize=yes");
    assert_eq!(
        run_fresh(&rig, &[plain, bad]),
        [0, lintel::commands::codes::BAD_DATA_FORMAT]
    );
    rig.advance(std::time::Duration::from_secs(10));
    assert_eq!(swipe_event(&rig), "23");
}

#[test]
fn time_rule_1_is_the_factory_24_hour_rule_until_the_server_sends_its_own() {
    let rig = Rig::start();
    // AuthorizeTimezoneId=1 and no timezone record: factory rule 1.
    assert_eq!(
        run_fresh(&rig, &[user_cmd(PIN, CARD, ""), authorize_cmd(PIN, 1, 1)]),
        [0, 0]
    );
    assert_eq!(swipe_event(&rig), "0", "opens at Monday 09:00");
    // The server's own rule 1 (Monday 10-11) replaces it: refused at 09:00.
    rig.advance(std::time::Duration::from_secs(10));
    assert_eq!(
        run_fresh(&rig, &[timezone_cmd(1, &[1], interval(1000, 1100))]),
        [0]
    );
    assert_eq!(swipe_event(&rig), "21");
    // Deleting the server's rule 1 restores the factory rule.
    rig.advance(std::time::Duration::from_secs(10));
    assert_eq!(
        run_fresh(&rig, &["DATA DELETE timezone TimezoneId=1".to_string()]),
        [0]
    );
    assert_eq!(swipe_event(&rig), "0");
}

#[test]
fn a_permission_without_a_door_opens_every_door_and_unknown_fields_are_ignored() {
    let rig = Rig::start();
    let user = format!(
        "{}\tCardID=99\tTZ=0000000100000000\tExpiredTime=20200101",
        user_cmd(PIN, CARD, "")
    );
    assert_eq!(
        run_fresh(&rig, &[user, commands::userauthorize_without_door(PIN, 1)]),
        [0, 0]
    );
    for reader in 1u8..=4 {
        let record = swipe_at(&rig, reader);
        assert_eq!(
            (record.get("event"), record.get("eventaddr")),
            (Some("0"), Some(reader.to_string().as_str()))
        );
    }
    // DELETE conditions stay strict: a field the table lacks is -621.
    assert_eq!(
        run_fresh(&rig, &[format!("DATA DELETE user Pin={PIN}\tCardID=99")]),
        [lintel::commands::codes::UNKNOWN_FIELD]
    );
}
