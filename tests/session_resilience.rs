//! The session against a server that is down, restarts, or misbehaves:
//! every event arrives, in order, and none is lost.

mod common;

use common::*;
use lintel_refserver::{Fault, FaultKind};
use std::time::Duration;

fn assert_all_arrived_in_order_once(
    server: &lintel_refserver::RefServer,
    expected: &[u64],
    code: &str,
) {
    let got = received_indexes(server, code);
    assert_eq!(
        got, expected,
        "events with code {code} arrive once each, in order"
    );
}

#[test]
fn server_down_for_a_while_then_back_gets_every_event_once_in_order() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    server.stop();
    let mut expected = Vec::new();
    for round in 0..3 {
        expected.extend(log_events(dir.path(), 27, 20));
        fw.notify_outbox();
        std::thread::sleep(Duration::from_millis(300 * (round + 1)));
    }
    server.restart().unwrap();
    assert!(server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .filter(|r| r.get("event") == Some("27"))
            .count()
            >= expected.len()
    }));
    // The outage itself is reported: 105 (lost the server), 214 (connected).
    assert!(server.wait_for(PATIENCE, |s| s
        .rtlog(SN)
        .iter()
        .any(|r| r.get("event") == Some("105"))));
    fw.stop();
    assert_all_arrived_in_order_once(&server, &expected, "27");
}

#[test]
fn device_restart_with_events_pending_loses_none() {
    let server = start_server(quick_server_config());
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server.url(), dir.path(), "");
    let fw = start_firmware(&cfg);
    let expected = log_events(dir.path(), 27, 50);
    fw.notify_outbox();
    std::thread::sleep(Duration::from_millis(200));
    fw.stop(); // the device goes down with everything pending
    server.restart().unwrap();
    let fw = start_firmware(&cfg);
    assert!(server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .filter(|r| r.get("event") == Some("27"))
            .count()
            >= expected.len()
    }));
    fw.stop();
    assert_all_arrived_in_order_once(&server, &expected, "27");
}

/// For faults where the server may have taken a batch whose answer was lost,
/// the device sends it again: nothing is lost and a repeated record keeps
/// its index, so the server can drop the copy.
fn run_with_fault(fault: Fault) {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "max_package_size = 2048",
    ));
    assert!(wait_online(&server));
    server.set_fault(fault.clone());
    if fault.kind == FaultKind::RefuseConnection {
        // Refusal bites on new connections: cut the device's keep-alive one.
        server.stop();
        server.restart().unwrap();
    }
    let expected = log_events(dir.path(), 27, 60);
    fw.notify_outbox();
    // Let the fault bite, then heal the server.
    assert!(
        server.wait_for(PATIENCE, |s| s.requests().iter().any(|r| r.fault.is_some())
            || s.refused_connections() > 0),
        "{fault:?}"
    );
    server.clear_faults();
    assert!(
        server.wait_for(PATIENCE, |s| distinct_indexes(s, "27") >= expected.len()),
        "{fault:?}"
    );
    fw.stop();
    let got = received_indexes(&server, "27");
    assert_eq!(
        first_occurrences(&got),
        expected,
        "{fault:?}: all events, in order"
    );
    assert!(
        got.len() <= 2 * expected.len(),
        "{fault:?}: only lost answers cause repeats"
    );
}

/// The indexes in order of first arrival. A batch whose answer was lost is
/// sent again with the same indexes, which the server can drop.
fn first_occurrences(got: &[u64]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    got.iter().copied().filter(|i| seen.insert(*i)).collect()
}

#[test]
fn http_500_on_uploads_is_retried() {
    run_with_fault(
        Fault::new(FaultKind::Status(500))
            .on_path("/iclock/cdata")
            .times(3),
    );
}

#[test]
fn garbage_answers_are_retried() {
    run_with_fault(
        Fault::new(FaultKind::GarbageBody)
            .on_path("/iclock/cdata")
            .times(2),
    );
}

#[test]
fn truncated_answers_are_retried() {
    run_with_fault(
        Fault::new(FaultKind::TruncateBody { keep: 1 })
            .on_path("/iclock/cdata")
            .times(2),
    );
}

#[test]
fn reset_mid_body_is_retried() {
    run_with_fault(
        Fault::new(FaultKind::ResetMidBody { keep: 0 })
            .on_path("/iclock/cdata")
            .times(2),
    );
}

#[test]
fn slow_answers_time_out_and_are_retried() {
    // The device's timeout is 3 s (config and server's TimeoutSec).
    run_with_fault(
        Fault::new(FaultKind::Delay(Duration::from_secs(5)))
            .on_path("/iclock/cdata")
            .times(1),
    );
}

#[test]
fn refused_connections_are_retried() {
    run_with_fault(Fault::new(FaultKind::RefuseConnection).times(3));
}

#[test]
fn server_restarted_mid_upload_loses_nothing() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "max_package_size = 2048",
    ));
    assert!(wait_online(&server));
    // Slow uploads so the restart lands in the middle of the backlog.
    server.set_fault(
        Fault::new(FaultKind::Delay(Duration::from_millis(100))).on_path("/iclock/cdata"),
    );
    let expected = log_events(dir.path(), 27, 200);
    fw.notify_outbox();
    assert!(server.wait_for(PATIENCE, |s| !s.rtlog(SN).is_empty()));
    server.stop();
    server.forget_registrations();
    server.clear_faults();
    std::thread::sleep(Duration::from_millis(500));
    server.restart().unwrap();
    assert!(server.wait_for(PATIENCE, |s| distinct_indexes(s, "27") >= expected.len()));
    fw.stop();
    let got = received_indexes(&server, "27");
    assert_eq!(first_occurrences(&got), expected);
    // The restarted server forgot the device: it registered again.
    let registrations = server
        .requests()
        .iter()
        .filter(|r| r.path == "/iclock/registry")
        .count();
    assert!(registrations >= 2);
}

#[test]
fn ping_keeps_the_heartbeat_during_a_long_upload() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "max_package_size = 1024",
    ));
    assert!(wait_online(&server));
    // Each upload takes 150 ms; 100 events in ~1 KiB batches take several RequestDelays.
    server.set_fault(
        Fault::new(FaultKind::Delay(Duration::from_millis(150))).on_path("/iclock/cdata"),
    );
    let expected = log_events(dir.path(), 27, 100);
    fw.notify_outbox();
    assert!(server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .filter(|r| r.get("event") == Some("27"))
            .count()
            >= expected.len()
    }));
    fw.stop();
    let reqs = server.requests();
    let first_upload = reqs
        .iter()
        .position(|r| r.path == "/iclock/cdata" && r.query_value("table") == Some("rtlog"))
        .unwrap();
    let last_upload = reqs
        .iter()
        .rposition(|r| r.path == "/iclock/cdata" && r.query_value("table") == Some("rtlog"))
        .unwrap();
    let pings = reqs[first_upload..last_upload]
        .iter()
        .filter(|r| r.path == "/iclock/ping" && r.token_ok())
        .count();
    assert!(pings >= 1, "a ping between the uploads of the backlog");
    assert_all_arrived_in_order_once(&server, &expected, "27");
}
