//! URLs from the server reach only the server's own origin: a photo `Url=`,
//! an UPGRADE `url=` or a redirect to another host is refused with -618
//! (Appendix 1, "Incorrect URL format") and that host gets no request; a
//! host the config allows gets the request, but never the token, and its
//! `Date` never sets the clock.

mod common;

use common::*;
use lintel::commands::codes;
use lintel_refserver::{Fault, FaultKind, RefServer, ServerConfig};
use std::time::{Duration, SystemTime};

const SECRET: &[u8] = b"the other host's secret";

/// The other host: serves `/secret` and claims it is 2001.
fn other_host() -> RefServer {
    let other = start_server(ServerConfig {
        clock: lintel_refserver::Clock::Fixed(
            SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200),
        ),
        ..quick_server_config()
    });
    other.serve_file("/secret", SECRET.to_vec());
    other.serve_file("/fw/emfw.cfg", SECRET.to_vec());
    other
}

/// Queues `command` and waits for its result code.
fn run(server: &RefServer, command: &str) -> i64 {
    let id = server.queue_command(SN, command).to_string();
    assert!(
        server.wait_for(PATIENCE, |s| s.results(SN).iter().any(|r| r.id == id)),
        "a result for {command}"
    );
    server
        .results(SN)
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.ret)
        .unwrap()
}

/// Whether any request the device made to `server` carried `needle` in its body.
fn sent_back(server: &RefServer, needle: &str) -> bool {
    server
        .requests()
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains(needle))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn photo_urls_to_another_host_are_refused_and_nothing_is_read_back() {
    let server = start_server(quick_server_config());
    let other = other_host();
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    let url = format!("{}/secret", other.url());
    let bio = run(
        &server,
        &format!("DATA UPDATE biophoto PIN=1\tType=9\tSize=0\tContent=\tFormat=1\tUrl={url}"),
    );
    let pic = run(
        &server,
        &format!("DATA UPDATE userpic pin=1\tsize=0\tformat=1\turl={url}"),
    );
    run(
        &server,
        "DATA QUERY tablename=biophoto,fielddesc=*,filter=*",
    );
    run(&server, "DATA QUERY tablename=userpic,fielddesc=*,filter=*");
    fw.stop();
    assert_eq!((bio, pic), (codes::BAD_URL, codes::BAD_URL));
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    assert!(!sent_back(&server, &base64(SECRET)));
}

#[test]
fn upgrade_urls_to_another_host_are_refused() {
    let server = start_server(quick_server_config());
    let other = other_host();
    let dir = tempfile::tempdir().unwrap();
    // Unsigned packages allowed, so the URL check itself answers (signed
    // upgrades by default would refuse before any download, -24).
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        "[upgrade]\nallow_unsigned = true",
    ));
    assert!(wait_online(&server));
    let code = run(
        &server,
        &format!(
            "UPGRADE checksum={},size={},url={}/fw/emfw.cfg,supportsubcontracting=1",
            "0".repeat(32),
            SECRET.len(),
            other.url()
        ),
    );
    fw.stop();
    assert_eq!(code, codes::BAD_URL);
    assert!(other.requests().is_empty(), "{:?}", other.requests());
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let server = start_server(quick_server_config());
    let other = other_host();
    server.set_fault(
        Fault::new(FaultKind::ReplaceBody {
            status: Some(302),
            body: Vec::new(),
            headers: vec![("Location".into(), format!("{}/secret", other.url()))],
        })
        .on_path("/photos/1.jpg"),
    );
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    let code = run(
        &server,
        "DATA UPDATE biophoto PIN=1\tType=9\tSize=0\tContent=\tFormat=1\tUrl=/photos/1.jpg",
    );
    run(
        &server,
        "DATA QUERY tablename=biophoto,fielddesc=*,filter=*",
    );
    fw.stop();
    assert_ne!(code, codes::OK);
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    assert!(!sent_back(&server, &base64(SECRET)));
}

#[test]
fn an_allowed_host_gets_no_token_and_its_date_does_not_set_the_clock() {
    let server = start_server(quick_server_config());
    let other = other_host();
    let other_authority = other.url().trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(
        &server.url(),
        dir.path(),
        &format!("allowed_download_hosts = \"{other_authority}\""),
    ));
    assert!(wait_online(&server));
    let code = run(
        &server,
        &format!(
            "DATA UPDATE userpic pin=1\tsize=0\tformat=1\turl={}/secret",
            other.url()
        ),
    );
    let year = chrono::Datelike::year(&fw.clock.now_utc());
    fw.stop();
    assert_eq!(code, codes::OK);
    let fetched = other.requests();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(
        !fetched[0]
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("cookie")),
        "{:?}",
        fetched[0].headers
    );
    assert!(
        year >= 2024,
        "the other host's Date (2001) set the clock to {year}"
    );
}
