//! Faults on demand and stop/restart on the same port.

mod common;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::time::Duration;

use common::*;
use lintel_refserver::*;

fn open_server() -> RefServer {
    RefServer::start(ServerConfig {
        token_check: false,
        ..ServerConfig::default()
    })
    .unwrap()
}

const RTLOG: &[u8] = b"time=2024-01-02 03:04:05\tpin=1\tevent=0\n";

#[test]
fn status_fault_counts_down_and_targets_one_table() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::Status(500))
            .on_path("/iclock/cdata")
            .with_query("table", "rtlog")
            .times(2),
    );
    let addr = server.addr();
    let rtstate = send(
        addr,
        "POST",
        "/iclock/cdata?SN=A&table=rtstate",
        None,
        b"time=1\tsensor=00",
    )
    .unwrap();
    assert_eq!(rtstate.status, 200);
    for _ in 0..2 {
        let r = send(addr, "POST", "/iclock/cdata?SN=A&table=rtlog", None, RTLOG).unwrap();
        assert_eq!(r.status, 500);
    }
    assert!(
        server.rtlog("A").is_empty(),
        "a faulted request must not be recorded as an upload"
    );
    assert_eq!(
        send(addr, "POST", "/iclock/cdata?SN=A&table=rtlog", None, RTLOG)
            .unwrap()
            .status,
        200
    );
    assert_eq!(server.rtlog("A").len(), 1);
    let faulted = server
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(faulted, 2);
}

#[test]
fn fault_until_cleared() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::Status(503)).on_method("GET"));
    for _ in 0..3 {
        assert_eq!(
            send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
                .unwrap()
                .status,
            503
        );
    }
    assert_eq!(
        send(
            server.addr(),
            "POST",
            "/iclock/cdata?SN=A&table=rtlog",
            None,
            RTLOG
        )
        .unwrap()
        .status,
        200
    );
    server.clear_faults();
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn garbage_body() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::GarbageBody).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(std::str::from_utf8(&r.body).is_err());
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .text(),
        "OK"
    );
}

#[test]
fn truncated_body_announces_more_than_it_sends() {
    let server = open_server();
    server.queue_command("A", "CONTROL DEVICE 01010105");
    server.set_fault(Fault::new(FaultKind::TruncateBody { keep: 5 }).times(1));
    let r = send(server.addr(), "GET", "/iclock/getrequest?SN=A", None, b"").unwrap();
    assert!(!r.complete);
    assert_eq!(r.body, b"C:1:C");
    assert!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 5
    );
    // The server did deliver it as far as its state goes: it is re-sent next poll.
    let again = send(server.addr(), "GET", "/iclock/getrequest?SN=A", None, b"").unwrap();
    assert_eq!(again.text(), "C:1:CONTROL DEVICE 01010105");
    assert_eq!(server.pending_commands("A")[0].deliveries, 2);
}

#[test]
fn reset_mid_body() {
    let server = open_server();
    server.serve_file("/big.bin", vec![7u8; 100_000]);
    server.set_fault(
        Fault::new(FaultKind::ResetMidBody { keep: 1000 })
            .on_path("/big.bin")
            .times(1),
    );
    let mut s = connect(server.addr()).unwrap();
    s.write_all(&request_bytes("GET", "/big.bin", None, b"", &[]))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    // SO_LINGER 0 turns the close into an RST, which the reader sees after the data.
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::ConnectionReset);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.len() - head_end <= 1000);
    let whole = send(server.addr(), "GET", "/big.bin", None, b"").unwrap();
    assert_eq!(whole.body.len(), 100_000);
}

#[test]
fn close_without_reply_and_delay() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::CloseWithoutReply)
            .on_path("/iclock/ping")
            .times(1),
    );
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"");
    assert!(r.is_err());
    assert_eq!(server.requests()[0].status, 0);
    server.set_fault(Fault::new(FaultKind::Delay(Duration::from_millis(50))).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.text(), "OK");
    assert!(server.requests()[1]
        .fault
        .as_deref()
        .unwrap()
        .starts_with("Delay"));
}

#[test]
fn refuse_connections_then_recover() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::RefuseConnection).times(2));
    for _ in 0..2 {
        assert!(send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").is_err());
    }
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(server.with_state(|s| s.refused_connections()), 2);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn stop_and_restart_on_same_port_keeps_state() {
    let server = RefServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    let token = register(&server, SN, CAPS);
    // An open keep-alive connection is cut by the stop, as by a server restart.
    let mut s = connect(addr).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    s.write_all(&request_bytes(
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
        &[],
    ))
    .unwrap();
    assert_eq!(read_reply(&mut reader).unwrap().status, 200);

    server.stop();
    assert!(!server.is_running());
    assert!(std::net::TcpStream::connect(addr).is_err());
    let mut rest = Vec::new();
    assert!(matches!(reader.read_to_end(&mut rest), Ok(0) | Err(_)));

    server.restart().unwrap();
    assert!(server.is_running());
    assert_eq!(server.addr(), addr);
    let r = send(
        addr,
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "session survives a restart that keeps state");

    // A restarted server that lost its database: OK on init, old token refused.
    server.forget_registrations();
    assert_eq!(
        send(
            addr,
            "GET",
            &format!("/iclock/ping?SN={SN}"),
            Some(&token),
            b""
        )
        .unwrap()
        .status,
        401
    );
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(init.text(), "OK");
}

#[test]
fn malformed_request_gets_400() {
    let server = open_server();
    let mut s = connect(server.addr()).unwrap();
    s.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let r = read_reply(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 400);
}
