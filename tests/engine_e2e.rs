//! End to end through the real binaries' paths: the `lintel` executable runs
//! the sim-4door board against the reference server, which enrols the demo's
//! users from `scripts/demo-enrol.txt`; `lintel sim … swipe` presents cards
//! and `lintel sim … state` shows the lock relay. This is the demo, tested.

mod common;

use common::Running;
use common::{PATIENCE, SN};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The command texts of a `push-server --script` file.
fn script_commands(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.replace("\\t", "\t").replace("\\n", "\n"))
        .collect()
}

fn lintel_sim(config: &Path, args: &[&str]) -> String {
    let out = common::binary(env!("CARGO_BIN_EXE_lintel"))
        .arg("sim")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("lintel sim runs");
    assert!(
        out.status.success(),
        "lintel sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn locks(config: &Path) -> Vec<bool> {
    let text = lintel_sim(config, &["state"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("state is JSON");
    v["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|b| b.as_bool().unwrap_or(false))
        .collect()
}

#[test]
fn the_demo_enrols_users_and_a_swipe_opens_door_1() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-enrol.txt"),
    )
    .unwrap();
    let commands = script_commands(&script);
    assert!(commands.len() >= 5);
    let mut cfg = common::quick_server_config();
    cfg.initial_commands = commands.clone();
    let server = common::start_server(cfg);
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_file(&server.url(), dir.path());
    let _fw = Running(
        common::binary(env!("CARGO_BIN_EXE_lintel"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lintel runs"),
    );
    let enrolled = server.wait_for(PATIENCE, |s| {
        s.results(SN).len() >= commands.len() && s.results(SN).iter().all(|r| r.ret == 0)
    });
    assert!(enrolled, "{:?}", server.results(SN));
    assert_eq!(locks(&config), [false; 4]);

    lintel_sim(&config, &["swipe", "--reader", "1", "--card", "4660"]);
    let end = Instant::now() + PATIENCE;
    while !locks(&config)[0] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(locks(&config)[0], "door 1's lock is released");
    let got = server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .any(|r| r.get("event") == Some("0") && r.get("pin") == Some("1"))
    });
    assert!(got, "{:?}", server.rtlog(SN));

    // Carol's card expired: refused with 29, door 2 stays locked.
    lintel_sim(&config, &["swipe", "--reader", "2", "--card", "4662"]);
    let refused = server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .any(|r| r.get("event") == Some("29") && r.get("pin") == Some("3"))
    });
    assert!(refused, "{:?}", server.rtlog(SN));
    assert!(!locks(&config)[1]);
}
