//! Encrypted PUSH (7.2, 7.3, Appendix 16; docs/encrypted-push.md) through
//! the running firmware against the reference server: the whole session
//! sealed, every kind of bad sealed body rejected with a logged reason and a
//! new exchange, and the compatibility rule in both directions.

mod common;

use common::*;
use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use lintel::platform::RecordingPlatform;
use lintel::store::Store;
use lintel::upgrade::package::{build_package_with, Compression, FirmwareVersion, PackageSpec};
use lintel::upgrade::running_target;
use lintel::upgrade::slots::{SlotName, Slots};
use lintel_refserver::{Encryption, Fault, FaultKind, RefServer, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// One failed poll: the device reconnects (init, exchange, registry).
fn force_reconnect(server: &RefServer) {
    server.set_fault(
        Fault::new(FaultKind::Status(500))
            .on_path("/iclock/getrequest")
            .times(1),
    );
}

fn encrypting_server() -> RefServer {
    start_server(ServerConfig {
        encryption: Encryption::Supported,
        ..quick_server_config()
    })
}

/// Requests of `SN` after its last exchange.
fn after_exchange(server: &RefServer) -> Vec<lintel_refserver::RequestLog> {
    let reqs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.sn() == Some(SN))
        .collect();
    let last = reqs
        .iter()
        .rposition(|r| r.path == "/iclock/exchange")
        .expect("an exchange took place");
    reqs[last + 1..].to_vec()
}

/// A firmware with an A/B layout under `dir` (for UPGRADE).
fn start_with_slots(server: &RefServer, dir: &Path, extra_server: &str) -> Firmware {
    let data = dir.join("data");
    seed_device_key(&data);
    // The packages here are unsigned: signatures have their own tests
    // (upgrade_flow), these are about the encrypted channel.
    let text = format!(
        "{}[upgrade]\nroot = \"{}\"\nallow_unsigned = true\n",
        config_text(&server.url(), &data, extra_server),
        dir.join("opt").display()
    );
    let config = Config::from_toml_str(&text, Path::new("t.toml"), dir).unwrap();
    let slots = Slots::new(dir.join("opt"));
    slots.ensure_layout().unwrap();
    std::fs::write(slots.slot_dir(SlotName::A).join("lintel"), b"old firmware").unwrap();
    let mut opts = StartOptions::for_config(&config);
    opts.platform = Arc::new(RecordingPlatform::new());
    Firmware::start(&config, opts).unwrap()
}

#[test]
fn the_whole_session_runs_encrypted() {
    let server = encrypting_server();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sync = server.queue_command(
        SN,
        "DATA UPDATE user CardNo=4660\tPin=1\tPassword=4711\tName=Ann\nCardNo=4661\tPin=2\tName=Bob",
    );
    let options = server.queue_command(SN, "GET OPTIONS LockCount,ReaderCount");
    let fw = start_with_slots(&server, dir.path(), "");
    assert!(wait_online(&server));
    log_events(&data, 27, 3);
    fw.notify_outbox();

    // An UPGRADE, its package fetched as a download of the sealed command.
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let bin = dir.path().join("bin");
    std::fs::write(&bin, &binary).unwrap();
    let pkg_path = dir.path().join("pkg");
    let built = build_package_with(
        &pkg_path,
        &PackageSpec {
            binary: &bin,
            version: &"99.0.0".parse::<FirmwareVersion>().unwrap(),
            target: running_target(),
            board_configs: &[],
            compression: Compression::None,
        },
        None,
    )
    .unwrap();
    let pkg = std::fs::read(&pkg_path).unwrap();
    server.serve_file("/fw/emfw.cfg", pkg.clone());
    let upgrade = server.queue_command(
        SN,
        &format!(
            "UPGRADE type=1,checksum={},size={},url=/fw/emfw.cfg",
            built.md5,
            pkg.len()
        ),
    );
    assert!(server.wait_for(PATIENCE, |s| {
        s.results(SN).len() >= 3
            && s.rtlog(SN)
                .iter()
                .filter(|r| r.get("event") == Some("27"))
                .count()
                >= 3
    }));
    fw.stop();

    let results = server.results(SN);
    let ret = |id: u64| {
        results
            .iter()
            .find(|r| r.id == id.to_string())
            .map(|r| r.ret)
    };
    assert_eq!(ret(sync), Some(0));
    assert_eq!(ret(options), Some(0));
    assert_eq!(ret(upgrade), Some(0), "{results:?}");
    let store = Store::open(&data).unwrap();
    let users: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 2);
    assert_eq!(
        std::fs::read(Slots::new(dir.path().join("opt")).current_binary()).unwrap(),
        binary
    );

    // Exactly one exchange, before registration; every request after it
    // went over the channel, posts with a sealed body, except the download.
    server.with_state(|s| assert_eq!(s.exchanges(SN), 1));
    let reqs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.sn() == Some(SN))
        .collect();
    let paths: Vec<_> = reqs.iter().take(4).map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/iclock/cdata",
            "/iclock/exchange",
            "/iclock/exchange",
            "/iclock/registry"
        ]
    );
    let after = after_exchange(&server);
    assert!(after.iter().any(|r| r.path == "/iclock/devicecmd"));
    assert!(after
        .iter()
        .any(|r| r.query_value("table") == Some("rtlog")));
    for r in &after {
        let download = r.path == "/iclock/file" || !r.path.starts_with("/iclock/");
        assert_eq!(r.sealed, !download, "{} {:?}", r.path, r.query);
        if r.method == "POST" {
            let ct = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            assert_eq!(ct, Some("application/octet-stream"), "{}", r.path);
        }
    }
    server.with_state(|s| assert!(s.seal_rejections().is_empty(), "{:?}", s.seal_rejections()));
}

/// One fault on the first sealed getrequest answer: the device refuses
/// it, logs why and exchanges keys again.
fn rejected_and_reconnected(kind: FaultKind, path: &str, reason: &str) {
    let logs = captured_logs();
    let server = encrypting_server();
    server.set_fault(Fault::new(kind.clone()).on_path(path).times(1));
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    // The spoiled answer still counts as a 200 at the server; a refused
    // public key ends its exchange before any poll.
    let polls = if kind == FaultKind::BadPublicKey {
        1
    } else {
        2
    };
    assert!(
        server.wait_for(PATIENCE, |s| s
            .requests_from(SN)
            .filter(|r| r.query_value("type") == Some("publickey"))
            .count()
            >= 2
            && s.encrypted(SN)
            && s.requests_from(SN)
                .filter(|r| r.path == "/iclock/getrequest" && r.status == 200)
                .count()
                >= polls),
        "{kind:?}: no second exchange"
    );
    fw.stop();
    let url = server.url();
    assert!(
        logs.any_line_with(&[&url, reason, "reconnecting"]),
        "{kind:?}: no log line with {reason:?}: {:#?}",
        logs.lines()
            .iter()
            .filter(|l| l.contains(&url))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_tampered_ciphertext_is_rejected() {
    rejected_and_reconnected(
        FaultKind::TamperSealed,
        "/iclock/getrequest",
        "failed authentication",
    );
}

#[test]
fn a_wrong_crc_is_rejected() {
    rejected_and_reconnected(FaultKind::WrongCrc, "/iclock/getrequest", "CRC32");
}

#[test]
fn a_replayed_body_is_rejected() {
    rejected_and_reconnected(FaultKind::ReplaySealed, "/iclock/getrequest", "replayed");
}

#[test]
fn a_reused_nonce_is_rejected() {
    rejected_and_reconnected(
        FaultKind::ReuseNonce,
        "/iclock/getrequest",
        "was already used",
    );
}

#[test]
fn a_bad_public_key_is_rejected() {
    rejected_and_reconnected(
        FaultKind::BadPublicKey,
        "/iclock/exchange",
        "public key is unusable",
    );
}

#[test]
fn a_3_0_1_server_gets_plain_text() {
    let server = start_server(ServerConfig {
        encryption: Encryption::Supported,
        push_prot_ver: "3.0.1".into(),
        ..quick_server_config()
    });
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    // A reconnection too (the init block names 3.0.1 then).
    force_reconnect(&server);
    assert!(server.wait_for(PATIENCE, |s| s
        .requests_from(SN)
        .filter(|r| r.path == "/iclock/registry")
        .count()
        >= 2));
    assert!(wait_online(&server));
    fw.stop();
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.path != "/iclock/exchange"));
    assert!(reqs.iter().all(|r| !r.sealed));
}

#[test]
fn a_server_without_the_exchange_gets_plain_text_in_auto() {
    // Announces 3.1.2 (the default) but has no /iclock/exchange.
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    force_reconnect(&server);
    assert!(server.wait_for(PATIENCE, |s| s
        .requests_from(SN)
        .any(|r| r.path == "/iclock/exchange" && r.status == 404)));
    assert!(server.wait_for(PATIENCE, |s| s
        .requests_from(SN)
        .filter(|r| r.path == "/iclock/getrequest" && r.status == 200)
        .count()
        >= 2));
    fw.stop();
    assert!(server.requests().iter().all(|r| !r.sealed));
}

#[test]
fn required_refuses_a_server_that_will_not_exchange() {
    let logs = captured_logs();
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "encryption = \"required\"",
    ));
    // It keeps trying the exchange, and never registers in plain text.
    assert!(server.wait_for(PATIENCE, |s| s
        .requests_from(SN)
        .filter(|r| r.path == "/iclock/exchange")
        .count()
        >= 2));
    fw.stop();
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path != "/iclock/registry"));
    assert!(logs.any_line_with(&[
        &server.url(),
        "\"required\"",
        "does not answer /iclock/exchange (404)",
        "not connecting in plain text"
    ]));
}

#[test]
fn required_with_a_server_that_requires_it_too() {
    let server = start_server(ServerConfig {
        encryption: Encryption::Required,
        ..quick_server_config()
    });
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "encryption = \"required\"",
    ));
    assert!(wait_online(&server));
    fw.stop();
    server.with_state(|s| assert!(s.exchanges(SN) >= 1));
    // Off: the device never exchanges, and this server refuses it.
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), "encryption = \"off\""));
    assert!(server.wait_for(PATIENCE, |s| s
        .requests_from(SN)
        .any(|r| r.path == "/iclock/registry" && r.status == 400)));
    fw.stop();
}
