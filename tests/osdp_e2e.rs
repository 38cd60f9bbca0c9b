//! OSDP readers through the whole firmware: LibOSDP (pip `libosdp`) as the reader on a
//! pseudo-terminal that the sim board opens as its RS-485 bus, the reference PUSH server
//! enrolling a user. A card read at the reader opens the door (sim relay), a keypad
//! password opens it too, and a reader that falls silent is logged as event 110, then
//! 237 when it answers again. Names contain `_a_pty` (skipped under qemu-user).

mod common;
#[path = "../hal/tests/libosdp/mod.rs"]
mod libosdp;

use common::{PATIENCE, SN};
use libosdp::LibOsdpPd;
use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use lintel_hal::sim::{self, SimRequest};
use lintel_refserver::RefServer;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "8899aabbccddeeff0011223344556677";

struct Rig {
    server: RefServer,
    firmware: Option<Firmware>,
    data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(pd: &LibOsdpPd, address: u8) -> Rig {
        let server = common::start_server(common::quick_server_config());
        let dir = tempfile::tempdir().unwrap();
        let board = dir.path().join("board.toml");
        std::fs::write(
            &board,
            format!(
                r#"
name = "osdp-e2e"
backend = "sim"
[[door]]
number = 1
lock = {{ chip = "sim", line = 10 }}
[[reader]]
number = 1
door = 1
direction = "in"
kind = "osdp"
bus = "rs485-1"
address = {address}
scbk = "{KEY}"
[[serial]]
name = "rs485-1"
device = "{}"
baud = 115200
parity = "none"
direction = "none"
"#,
                pd.device.display()
            ),
        )
        .unwrap();
        let data_dir = dir.path().join("data");
        let text = format!(
            "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}\"\n[server]\nurl = \"{}\"\nerror_delay_sec = 1\nrequest_delay_sec = 1\ntimeout_sec = 3\n",
            data_dir.display(),
            board.display(),
            server.url()
        );
        let cfg = Config::from_toml_str(&text, Path::new("test.toml"), &data_dir).unwrap();
        let firmware = Firmware::start(&cfg, StartOptions::for_config(&cfg)).expect("starts");
        assert!(common::wait_online(&server));
        Rig {
            server,
            firmware: Some(firmware),
            data_dir,
            _dir: dir,
        }
    }

    fn enrol(&self, commands: &[&str]) {
        let ids: Vec<String> = commands
            .iter()
            .map(|c| self.server.queue_command(SN, c).to_string())
            .collect();
        let done = self.server.wait_for(PATIENCE, |s| {
            ids.iter()
                .all(|id| s.results(SN).iter().any(|r| &r.id == id && r.ret == 0))
        });
        assert!(done, "{:?}", self.server.results(SN));
    }

    fn lock_open(&self) -> bool {
        let state = sim::request(&self.data_dir, &SimRequest::State)
            .expect("sim socket")
            .state
            .expect("state");
        state.locks[0]
    }

    fn wait_lock(&self, open: bool) -> bool {
        let end = Instant::now() + PATIENCE;
        while Instant::now() < end {
            if self.lock_open() == open {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn wait_event(&self, code: &str, n: usize) -> Vec<lintel_refserver::Record> {
        self.server.wait_for(PATIENCE, |s| {
            s.rtlog(SN)
                .iter()
                .filter(|r| r.get("event") == Some(code))
                .count()
                >= n
        });
        self.server
            .rtlog(SN)
            .into_iter()
            .filter(|r| r.get("event") == Some(code))
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(f) = self.firmware.take() {
            f.stop();
        }
    }
}

fn bits(card: u64) -> String {
    lintel_hal::wiegand::Format::standard("wiegand26")
        .unwrap()
        .encode(card, None)
        .unwrap()
        .to_string()
}

#[test]
fn an_osdp_card_opens_the_door_and_a_silent_reader_logs_110_then_237_over_a_pty() {
    let Some(mut pd) = LibOsdpPd::spawn(101, Some(KEY), &["--enforce-secure"]) else {
        return;
    };
    let rig = Rig::start(&pd, 101);
    rig.enrol(&[
        "DATA UPDATE timezone TimezoneId=1\tSunTime1=2359\tMonTime1=2359\tTueTime1=2359\tWedTime1=2359\tThuTime1=2359\tFriTime1=2359\tSatTime1=2359\tHol1Time1=2359\tHol2Time1=2359\tHol3Time1=2359",
        "DATA UPDATE user CardNo=4660\tPin=1\tPassword=\tGroup=0\tStartTime=0\tEndTime=0\tName=Alice\tPrivilege=0",
        "DATA UPDATE userauthorize Pin=1\tAuthorizeTimezoneId=1\tAuthorizeDoorId=1\tDevID=1",
        "SET OPTIONS Door1Drivertime=2,Door1SupplierPassWord=88888888",
    ]);
    // Registration announced the RS-485 reader.
    let registered = rig.server.wait_for(PATIENCE, |s| {
        s.requests_from(SN).any(|r| {
            r.path == "/iclock/registry"
                && String::from_utf8_lossy(&r.body).contains("~Ext485ReaderFunOn=1")
        })
    });
    assert!(registered, "registry carries ~Ext485ReaderFunOn=1");

    // A card at the reader: through the Secure Channel, the server's formats, the rules.
    assert!(!rig.lock_open());
    let mut granted = false;
    let end = Instant::now() + PATIENCE;
    while !granted && Instant::now() < end {
        // The reader may still be setting up its Secure Channel: present the card again.
        pd.card(&bits(4660));
        granted = rig.wait_lock_for(Duration::from_secs(2));
    }
    assert!(granted, "the OSDP card opened door 1");
    let ev = rig.wait_event("0", 1);
    assert_eq!(ev[0].get("cardno"), Some("4660"));
    assert_eq!(ev[0].get("eventaddr"), Some("1"));
    assert!(rig.wait_lock(false), "relocks after the drive time");

    // The emergency password on the reader's keypad takes the Wiegand keypad's path.
    pd.keys("88888888#");
    let ev = rig.wait_event("4", 1);
    assert_eq!(ev[0].get("eventaddr"), Some("1"));
    assert!(rig.wait_lock(false));

    // The reader falls silent: 110 at its door; it answers again: 237.
    pd.set("silent", true.into());
    let ev = rig.wait_event("110", 1);
    assert_eq!(ev[0].get("eventaddr"), Some("1"));
    pd.set("silent", false.into());
    let ev = rig.wait_event("237", 1);
    assert_eq!(ev[0].get("eventaddr"), Some("1"));
    assert_eq!(rig.wait_event("110", 1).len(), 1, "reported once");
}

impl Rig {
    fn wait_lock_for(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.lock_open() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
