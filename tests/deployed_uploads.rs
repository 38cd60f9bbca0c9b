//! Uploads the way deployed servers read them (issue 10): one rtlog record
//! per request by default, `count=` on rtlog and rtstate, and one `sensor`
//! byte from a board of four doors.

mod common;

use common::*;

/// A server that keeps only the first line of each rtlog POST.
fn first_line_server() -> lintel_refserver::RefServer {
    let mut cfg = quick_server_config();
    cfg.rtlog_first_line_only = true;
    start_server(cfg)
}

/// Logs a backlog while the server is down, then lets it back up.
fn backlog_through(extra_server: &str) -> (lintel_refserver::RefServer, Vec<u64>, bool) {
    let server = first_line_server();
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), extra_server));
    assert!(wait_online(&server));
    server.stop();
    let expected = log_events(dir.path(), 27, 20);
    fw.notify_outbox();
    server.restart().unwrap();
    // Every backlog event left the device: its outbox is drained.
    let drained = server.wait_for(PATIENCE, |s| {
        s.requests_from(SN).any(|r| {
            r.query_value("table") == Some("rtlog")
                && r.status == 200
                && String::from_utf8_lossy(&r.body).contains(&format!("index={}", expected[19]))
        })
    });
    fw.stop();
    (server, expected, drained)
}

#[test]
fn one_record_per_rtlog_request_delivers_every_event_to_a_first_line_server() {
    let (server, expected, drained) = backlog_through("");
    assert!(drained);
    assert_eq!(
        received_indexes(&server, "27"),
        expected,
        "every event, once, in order"
    );
    for r in server
        .requests()
        .iter()
        .filter(|r| r.query_value("table") == Some("rtlog"))
    {
        let records = String::from_utf8_lossy(&r.body).lines().count();
        assert_eq!(records, 1, "{:?}", r.body);
        assert_eq!(r.query_value("count"), Some("1"));
    }
}

#[test]
fn the_batching_switch_sends_several_records_which_a_first_line_server_loses() {
    // Why the switch is off by default: the same server keeps one event of
    // each multi-record POST.
    let (server, expected, drained) = backlog_through("batch_rtlog = true");
    assert!(drained);
    let batched = server.requests().into_iter().find(|r| {
        r.query_value("table") == Some("rtlog")
            && String::from_utf8_lossy(&r.body).lines().count() > 1
    });
    let batched = batched.expect("a multi-record rtlog POST");
    let n = String::from_utf8_lossy(&batched.body).lines().count();
    assert_eq!(batched.query_value("count"), Some(n.to_string().as_str()));
    assert!(received_indexes(&server, "27").len() < expected.len());
}

#[test]
fn rtstate_carries_count_and_one_sensor_byte_on_a_four_door_board() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(server.wait_for(PATIENCE, |s| !s.table_records(SN, "rtstate").is_empty()));
    fw.stop();
    let posts: Vec<_> = server
        .uploads(SN)
        .into_iter()
        .filter(|u| u.table.as_deref() == Some("rtstate"))
        .collect();
    assert!(!posts.is_empty());
    for u in posts {
        assert!(u.accepted);
        assert_eq!(u.query_value("count"), Some("1"));
        assert_eq!(u.count_matches, Some(true));
        let sensor = u.records[0].get("sensor").unwrap();
        assert_eq!(sensor.len(), 2, "one byte for doors 1-4: {sensor}");
    }
}
