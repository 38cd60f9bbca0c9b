//! A database that cannot be written (disk full, read-only remount, I/O
//! errors) loses no decided event: the engine keeps them in memory and
//! writes them, in order and once each, when writes work again, and the
//! server hears of it in the error log. The session neither re-sends a
//! batch whose acknowledgement could not be stored nor reconnects every
//! ErrorDelay while the database fails.
//!
//! The tests run as root, where file modes do not stop writes, so the
//! failing disk is SQLite refusing writes to the named tables from every
//! connection (a trigger per table and operation); the store's own tests
//! cover SQLite's real SQLITE_FULL and SQLITE_READONLY.

mod common;
mod engine_common;

use common::*;
use engine_common::Rig;
use lintel::store::Store;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every table the firmware's connections write.
const ALL_TABLES: &[&str] = &[
    "event_log",
    "outbox",
    "options",
    "command_results",
    "error_log",
];

/// Makes writes to `tables` fail with `message` on every connection.
fn refuse_writes(data_dir: &Path, tables: &[&str], message: &str) {
    let store = Store::open(data_dir).unwrap();
    for table in tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            store
                .conn()
                .execute_batch(&format!(
                    "CREATE TRIGGER fault_{table}_{op} BEFORE {op} ON {table}
                     BEGIN SELECT RAISE(ABORT, '{message}'); END;"
                ))
                .unwrap();
        }
    }
}

fn allow_writes(data_dir: &Path, tables: &[&str]) {
    let store = Store::open(data_dir).unwrap();
    for table in tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            store
                .conn()
                .execute_batch(&format!("DROP TRIGGER IF EXISTS fault_{table}_{op};"))
                .unwrap();
        }
    }
}

/// The rtlog records the server took for these cards, in arrival order.
fn records_of(rig: &Rig, cards: &HashSet<String>) -> Vec<lintel_refserver::Record> {
    rig.server
        .rtlog(SN)
        .into_iter()
        .filter(|r| r.get("cardno").is_some_and(|c| cards.contains(c)))
        .collect()
}

/// 20 swipes decided while `tables` refuse writes, then writes return:
/// every event decided meanwhile reaches the server exactly once, in
/// decision order, and the error log says how many waited.
///
/// Under a loaded machine the sim may split a Wiegand frame (an event 42
/// instead of 27 with the card): every decided event counts, and each
/// swiped card is found at most once.
fn swipes_while_writes_fail(tables: &[&str], message: &str) {
    let rig = Rig::start();
    let cards: Vec<u64> = (0..20).map(|i| 47_000 + i).collect();
    let card_texts: HashSet<String> = cards.iter().map(u64::to_string).collect();
    let before = Store::open(&rig.data_dir)
        .unwrap()
        .max_event_index()
        .unwrap();
    refuse_writes(&rig.data_dir, tables, message);
    for card in &cards {
        rig.swipe(1, *card);
    }
    assert!(records_of(&rig, &card_texts).is_empty());
    allow_writes(&rig.data_dir, tables);
    // The next engine step writes what waited, then logs the report.
    rig.advance(Duration::from_secs(1));
    let report = |s: &lintel_refserver::State| {
        s.table_records(SN, "errorlog").into_iter().find(|r| {
            r.get("errmsg")
                .is_some_and(|m| m.contains("kept in memory"))
        })
    };
    assert!(
        rig.server.wait_for(PATIENCE, |s| report(s).is_some()),
        "the server hears of it in the error log"
    );
    let entry = rig.server.with_state(report).unwrap();
    assert!(
        entry.get("errcode").is_some_and(|c| c.starts_with("D01E")),
        "{:?}",
        entry.fields
    );
    assert_eq!(entry.get("dataorigin"), Some("dev"));
    let additional: serde_json::Value = {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(entry.get("additional").unwrap())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    let held = additional["written_late"].as_u64().unwrap();
    assert!(held >= 20, "{additional}: every swipe decided something");
    assert_eq!(additional["lost"].as_u64(), Some(0));
    let decided = |s: &lintel_refserver::State| -> Vec<u64> {
        s.rtlog(SN)
            .iter()
            .filter_map(|r| r.get("index").and_then(|i| i.parse().ok()))
            .filter(|i| *i > before)
            .collect()
    };
    let arrived = rig.server.wait_for(PATIENCE, |s| {
        decided(s).len() >= usize::try_from(held).unwrap()
    });
    assert!(arrived, "all {held} held events reach the server");
    let indexes = rig.server.with_state(decided);
    assert_eq!(
        indexes.len(),
        usize::try_from(held).unwrap(),
        "each once: {indexes:?}"
    );
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    // The swipes that decoded are there once each, in the order made.
    let order: Vec<u64> = records_of(&rig, &card_texts)
        .iter()
        .map(|r| r.get("cardno").unwrap().parse().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn swipes_decided_while_the_disk_is_full_reach_the_server_once_each() {
    swipes_while_writes_fail(&["event_log"], "database or disk is full");
}

#[test]
fn swipes_decided_while_the_database_is_read_only_reach_the_server_once_each() {
    swipes_while_writes_fail(ALL_TABLES, "attempt to write a readonly database");
}

/// How many times the server took the rtlog record with `index`.
fn times_uploaded(server: &lintel_refserver::RefServer, index: u64) -> usize {
    server
        .rtlog(SN)
        .iter()
        .filter(|r| r.get("index").and_then(|i| i.parse().ok()) == Some(index))
        .count()
}

fn init_requests(server: &lintel_refserver::RefServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/iclock/cdata" && r.method == "GET")
        .count()
}

#[test]
fn an_acknowledgement_that_cannot_be_stored_does_not_resend_the_batch() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let indexes = log_events(&data, 201, 17);
    // Everything writes but the upload watermark, as when a full disk
    // takes the small updates of registration and not the next one.
    let store = Store::open(&data).unwrap();
    for op in ["INSERT", "UPDATE"] {
        store
            .conn()
            .execute_batch(&format!(
                "CREATE TRIGGER fault_ack_{op} BEFORE {op} ON options
                 WHEN NEW.key = '~OutboxAckedThrough'
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
            ))
            .unwrap();
    }
    let fw = start_firmware(&config(&server.url(), &data, ""));
    assert!(server.wait_for(PATIENCE, |s| s
        .rtlog(SN)
        .iter()
        .any(|r| r.get("index").and_then(|i| i.parse().ok()) == Some(indexes[0]))));
    // With ErrorDelay = 1 s the old loop re-sent the batch every second.
    let window = Instant::now() + Duration::from_secs(8);
    let init_before = init_requests(&server);
    while Instant::now() < window {
        std::thread::sleep(Duration::from_millis(200));
    }
    let reconnects = init_requests(&server) - init_before;
    let resent = times_uploaded(&server, indexes[0]);
    fw.stop();
    assert_eq!(resent, 1, "the batch was sent {resent} times");
    // Backing off: 1, 2, 4 s ... not a reconnect every second.
    assert!(reconnects <= 5, "{reconnects} reconnects in 8 s");
    for i in &indexes {
        assert_eq!(times_uploaded(&server, *i), 1, "index {i}");
    }
}

#[test]
fn a_read_only_data_dir_backs_off_instead_of_reconnecting_every_error_delay() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    log_events(&data, 201, 17);
    refuse_writes(&data, ALL_TABLES, "attempt to write a readonly database");
    let fw = start_firmware(&config(&server.url(), &data, ""));
    std::thread::sleep(Duration::from_secs(10));
    let attempts = init_requests(&server);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/iclock/cdata")
        .count();
    // Writes return: everything is delivered, once.
    allow_writes(&data, ALL_TABLES);
    let delivered = server.wait_for(Duration::from_secs(90), |s| {
        distinct_indexes(s, "201") == 17
    });
    fw.stop();
    assert!(attempts <= 5, "{attempts} connection attempts in 10 s");
    assert!(
        posts <= 1,
        "{posts} uploads while nothing could be acknowledged"
    );
    assert!(delivered, "the 17 events arrive once writes work");
    let total = server
        .rtlog(SN)
        .iter()
        .filter(|r| r.get("event") == Some("201"))
        .count();
    assert_eq!(total, 17, "each once");
}
