//! UPGRADE (12.4.1) through the running firmware's session against the
//! reference server: every method, a dropped method-3 download, every refusal,
//! and a new version that never reaches its server (rolled back, reported).

mod common;

use common::*;
use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use lintel::platform::{PlatformAction, RecordingPlatform};
use lintel::upgrade::package::{
    build_package_with, parse_private_key_pem, Compression, FirmwareVersion, PackageSpec,
};
use lintel::upgrade::running_target;
use lintel::upgrade::slots::{SlotName, Slots};
use lintel_refserver::{Fault, FaultKind, RefServer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SIGNING_KEY: &str = include_str!("../src/upgrade/testdata/signing_key.pem");
const OTHER_KEY: &str = include_str!("../src/upgrade/testdata/other_key.pem");
const PUBLIC_KEY: &str = include_str!("../src/upgrade/testdata/signing_key.pub.pem");
/// The `[upgrade]` line of a device that checks packages against PUBLIC_KEY.
const KEYED: &str = "public_key = \"@KEY@\"";

/// Incompressible bytes, so a package spans several 1 MiB ranges.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

struct Package {
    bytes: Vec<u8>,
    md5: String,
    binary: Vec<u8>,
}

fn package(dir: &Path, version: &str, target: &str, key: Option<&str>) -> Package {
    let binary = noise(2_500_000, 11);
    let bin = dir.join(format!("bin-{version}-{target}"));
    std::fs::write(&bin, &binary).unwrap();
    let version: FirmwareVersion = version.parse().unwrap();
    let out = dir.join(format!("pkg-{version}-{target}"));
    let key = key.map(|k| parse_private_key_pem(k).unwrap());
    let built = build_package_with(
        &out,
        &PackageSpec {
            binary: &bin,
            version: &version,
            target,
            board_configs: &[],
            compression: Compression::None,
        },
        key.as_ref(),
    )
    .unwrap();
    Package {
        bytes: std::fs::read(&out).unwrap(),
        md5: built.md5,
        binary,
    }
}

/// Version 99.0.0 for this device, signed with SIGNING_KEY.
fn signed_package(dir: &Path) -> Package {
    package(dir, "99.0.0", running_target(), Some(SIGNING_KEY))
}

/// A length as the UPGRADE command's `size` (u64 on every target).
fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Device {
    dir: tempfile::TempDir,
    config: Config,
    platform: RecordingPlatform,
}

impl Device {
    fn new(server: &RefServer, upgrade_toml: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[upgrade]\nroot = \"{}\"\n{upgrade_toml}\n",
            config_text(&server.url(), &dir.path().join("data"), ""),
            dir.path().join("opt").display()
        );
        let key = dir.path().join("key.pub.pem");
        std::fs::write(&key, PUBLIC_KEY).unwrap();
        let text = text.replace("@KEY@", &key.display().to_string());
        let config = Config::from_toml_str(&text, Path::new("t.toml"), dir.path()).unwrap();
        let slots = Slots::new(dir.path().join("opt"));
        slots.ensure_layout().unwrap();
        std::fs::write(slots.slot_dir(SlotName::A).join("lintel"), b"old firmware").unwrap();
        Device {
            dir,
            config,
            platform: RecordingPlatform::new(),
        }
    }

    fn start(&self) -> Firmware {
        let mut opts = StartOptions::for_config(&self.config);
        opts.platform = Arc::new(self.platform.clone());
        Firmware::start(&self.config, opts).unwrap()
    }

    fn slots(&self) -> Slots {
        Slots::new(self.dir.path().join("opt"))
    }

    fn current_binary(&self) -> Vec<u8> {
        std::fs::read(self.slots().current_binary()).unwrap()
    }

    fn restarts(&self) -> usize {
        self.platform
            .actions()
            .iter()
            .filter(|a| **a == PlatformAction::Restart)
            .count()
    }
}

/// Queues an UPGRADE and returns its Return code.
fn upgrade(server: &RefServer, params: &str) -> i64 {
    let id = server.queue_command(SN, &format!("UPGRADE {params}"));
    assert!(server.wait_for(PATIENCE, |s| s
        .results(SN)
        .iter()
        .any(|r| r.id == id.to_string())));
    let r = server
        .results(SN)
        .into_iter()
        .find(|r| r.id == id.to_string())
        .unwrap();
    assert_eq!(r.cmd, "UPGRADE");
    r.ret
}

/// A method-3 UPGRADE of a signed package whose download meets `fault`
/// once, after its first range went through. Returns the server, the
/// device, the package and the command's result.
fn ranged_upgrade_meeting(fault: Fault) -> (RefServer, Device, Package, i64) {
    let server = start_server(quick_server_config());
    let dev = Device::new(&server, KEYED);
    let pkg = signed_package(dev.dir.path());
    server.serve_file("/data/emfw.cfg", pkg.bytes.clone());
    let fw = dev.start();
    assert!(wait_online(&server));
    let params = format!(
        "checksum={},size={},url=/data/emfw.cfg,supportsubcontracting=1",
        pkg.md5,
        pkg.bytes.len()
    );
    let id = server.queue_command(SN, &format!("UPGRADE {params}"));
    assert!(server.wait_for(PATIENCE, |s| s
        .requests()
        .iter()
        .any(|r| r.path == "/data/emfw.cfg")));
    server.set_fault(fault.on_path("/data/emfw.cfg").times(1));
    assert!(server.wait_for(PATIENCE, |s| s
        .results(SN)
        .iter()
        .any(|r| r.id == id.to_string())));
    fw.stop();
    let result = server
        .results(SN)
        .into_iter()
        .find(|r| r.id == id.to_string())
        .unwrap();
    (server, dev, pkg, result.ret)
}

#[test]
fn method3_ranged_download_survives_a_dropped_connection_then_installs_and_restarts() {
    // The next range after the first is cut off at 300 kB.
    let (server, dev, pkg, ret) =
        ranged_upgrade_meeting(Fault::new(FaultKind::TruncateBody { keep: 300_000 }));
    assert_eq!(ret, 0);
    let ranges: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/data/emfw.cfg")
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("range"))
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert!(ranges.len() >= 3, "{ranges:?}");
    assert!(ranges.iter().all(|r| r.starts_with("bytes=")));
    assert_eq!(
        dev.current_binary(),
        pkg.binary,
        "the new binary is current"
    );
    assert_eq!(dev.slots().active().unwrap(), SlotName::B);
    assert_eq!(dev.restarts(), 1, "restart after the result was reported");
}

#[test]
fn methods_1_and_2_through_iclock_file() {
    use base64::Engine as _;
    for raw in [false, true] {
        let server = start_server(quick_server_config());
        let dev = Device::new(&server, KEYED);
        let pkg = signed_package(dev.dir.path());
        let params = if raw {
            server.serve_file("/fw/raw/emfw.cfg", pkg.bytes.clone());
            format!(
                "type=1,checksum={},size={},url=http://fw.example/fw/raw/emfw.cfg",
                pkg.md5,
                pkg.bytes.len()
            )
        } else {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&pkg.bytes);
            server.serve_file("/fw/b64/emfw.cfg", encoded.into_bytes());
            format!(
                "checksum={},url=/fw/b64/emfw.cfg,size={}",
                pkg.md5,
                pkg.bytes.len()
            )
        };
        let fw = dev.start();
        assert!(wait_online(&server));
        let ret = upgrade(&server, &params);
        fw.stop();
        assert_eq!(ret, 0, "raw={raw}");
        assert_eq!(dev.current_binary(), pkg.binary);
        let file_requests: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.query_value("url").is_some())
            .collect();
        assert!(!file_requests.is_empty());
        assert!(
            file_requests.iter().all(|r| r.token_ok()),
            "the file request carries the token"
        );
    }
}

/// A package whose tar holds a `../evil` entry after a valid manifest.
fn hostile_package(dir: &Path) -> Vec<u8> {
    let good = package(dir, "99.0.0", running_target(), Some(SIGNING_KEY));
    let mut bytes = good.bytes;
    bytes.truncate(bytes.len() - 1024);
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..7].copy_from_slice(b"../evil");
    }
    header.set_size(3);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    bytes.extend_from_slice(header.as_bytes());
    let mut data = b"pwn".to_vec();
    data.resize(512, 0);
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&[0u8; 1024]);
    bytes
}

#[test]
fn refusals_get_their_return_codes_and_leave_the_running_firmware() {
    let server = start_server(quick_server_config());
    let dev = Device::new(&server, KEYED);
    let dir = dev.dir.path();
    let signed = package(dir, "99.0.0", running_target(), Some(SIGNING_KEY));
    let wrong_key = package(dir, "99.0.1", running_target(), Some(OTHER_KEY));
    let unsigned = package(dir, "99.0.2", running_target(), None);
    let wrong_target = package(
        dir,
        "99.0.3",
        "riscv64gc-unknown-linux-gnu",
        Some(SIGNING_KEY),
    );
    let older = package(dir, "0.0.1", running_target(), Some(SIGNING_KEY));
    let hostile = hostile_package(dir);
    for (path, bytes) in [
        ("/f/signed/emfw.cfg", &signed.bytes),
        ("/f/wrongkey/emfw.cfg", &wrong_key.bytes),
        ("/f/unsigned/emfw.cfg", &unsigned.bytes),
        ("/f/target/emfw.cfg", &wrong_target.bytes),
        ("/f/older/emfw.cfg", &older.bytes),
        ("/f/hostile/emfw.cfg", &hostile),
        ("/f/name/firmware.bin", &signed.bytes),
    ] {
        server.serve_file(path, bytes.clone());
    }
    let fw = dev.start();
    assert!(wait_online(&server));
    let cmd =
        |path: &str, md5: &str, size: u64| format!("type=1,checksum={md5},size={size},url={path}");
    let cases = [
        (
            "wrong checksum",
            cmd("/f/signed/emfw.cfg", &"0".repeat(32), len(&signed.bytes)),
            -19,
        ),
        (
            "wrong size",
            cmd("/f/signed/emfw.cfg", &signed.md5, len(&signed.bytes) + 1),
            -20,
        ),
        (
            "bad signature",
            cmd(
                "/f/wrongkey/emfw.cfg",
                &wrong_key.md5,
                len(&wrong_key.bytes),
            ),
            -24,
        ),
        (
            "unsigned",
            cmd("/f/unsigned/emfw.cfg", &unsigned.md5, len(&unsigned.bytes)),
            -24,
        ),
        (
            "wrong target",
            cmd(
                "/f/target/emfw.cfg",
                &wrong_target.md5,
                len(&wrong_target.bytes),
            ),
            -22,
        ),
        (
            "older version",
            cmd("/f/older/emfw.cfg", &older.md5, len(&older.bytes)),
            -23,
        ),
        (
            "hostile tar",
            cmd("/f/hostile/emfw.cfg", &md5_hex(&hostile), len(&hostile)),
            -24,
        ),
        (
            "file name",
            cmd("/f/name/firmware.bin", &signed.md5, len(&signed.bytes)),
            -25,
        ),
        (
            "missing file",
            cmd("/f/none/emfw.cfg", &signed.md5, len(&signed.bytes)),
            -721,
        ),
        (
            "no space",
            cmd("/f/signed/emfw.cfg", &signed.md5, 1 << 60),
            -18,
        ),
        ("bad parameters", "checksum=zz".to_owned(), -11),
    ];
    for (what, params, code) in &cases {
        assert_eq!(upgrade(&server, params), *code, "{what}");
        assert_eq!(
            dev.current_binary(),
            b"old firmware",
            "{what}: nothing installed"
        );
    }
    // And the signed one installs.
    assert_eq!(
        upgrade(
            &server,
            &cmd("/f/signed/emfw.cfg", &signed.md5, len(&signed.bytes))
        ),
        0
    );
    fw.stop();
    assert_eq!(dev.current_binary(), signed.binary);
    assert!(!PathBuf::from(dir).join("evil").exists());
    assert!(!dir.join("data").join("evil").exists());
}

#[test]
fn a_version_that_never_reaches_its_server_is_rolled_back_and_reported() {
    let server = start_server(quick_server_config());
    let dev = Device::new(&server, &format!("{KEYED}\ntrial_seconds = 2"));
    let pkg = signed_package(dev.dir.path());
    server.serve_file("/fw/emfw.cfg", pkg.bytes.clone());
    let fw = dev.start();
    assert!(wait_online(&server));
    let ret = upgrade(
        &server,
        &format!(
            "type=1,checksum={},size={},url=/fw/emfw.cfg",
            pkg.md5,
            len(&pkg.bytes)
        ),
    );
    assert_eq!(ret, 0);
    fw.stop();
    assert_eq!(dev.current_binary(), pkg.binary);

    // "The new version" starts while its server is unreachable.
    server.stop();
    let fw = dev.start();
    let slots = dev.slots();
    let deadline = std::time::Instant::now() + PATIENCE;
    while slots.active().unwrap() != SlotName::A && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    fw.stop();
    assert_eq!(
        slots.active().unwrap(),
        SlotName::A,
        "rolled back to the old slot"
    );
    assert_eq!(dev.current_binary(), b"old firmware");
    assert_eq!(
        dev.restarts(),
        2,
        "one restart after installing, one into the old version"
    );

    // The old version connects and reports the rollback as an error log.
    server.restart().unwrap();
    let fw = dev.start();
    assert!(server.wait_for(PATIENCE, |s| {
        s.uploads(SN).iter().any(|u| {
            u.tablename.as_deref() == Some("errorlog")
                && u.records
                    .iter()
                    .any(|r| r.get("errcode") == Some("D01E0720"))
        })
    }));
    fw.stop();
    assert!(slots.pending_rollback_report().unwrap().is_none());
}

/// What the download left in `<data_dir>/upgrade` (partial or whole packages).
fn leftovers(dev: &Device) -> Vec<String> {
    std::fs::read_dir(dev.dir.path().join("data").join("upgrade"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("emfw"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn failed_whole_file_downloads_leave_no_partial_file_and_later_events_are_logged() {
    let server = start_server(quick_server_config());
    let dev = Device::new(&server, KEYED);
    // Forty times what the command announces.
    let announced = 100_000u64;
    server.serve_file("/big/emfw.cfg", noise(4_000_000, 3));
    let fw = dev.start();
    assert!(wait_online(&server));
    let params = format!(
        "type=1,checksum={},size={announced},url=/big/emfw.cfg",
        "0".repeat(32)
    );
    assert_eq!(upgrade(&server, &params), -20, "more than announced");
    assert_eq!(leftovers(&dev), Vec::<String>::new());
    // A download cut off half way fails, and takes its partial file with it.
    server.set_fault(
        Fault::new(FaultKind::TruncateBody { keep: 50_000 })
            .on_path("/iclock/file")
            .times(1),
    );
    let params = format!(
        "type=1,checksum={},size=4000000,url=/big/emfw.cfg",
        "0".repeat(32)
    );
    assert_eq!(upgrade(&server, &params), -721, "cut off");
    assert_eq!(leftovers(&dev), Vec::<String>::new());
    // The events decided afterwards still reach the server.
    let indexes = log_events(&dev.dir.path().join("data"), 27, 8);
    fw.notify_outbox();
    assert!(server.wait_for(PATIENCE, |s| {
        let got: Vec<u64> = s
            .rtlog(SN)
            .iter()
            .filter(|r| r.get("event") == Some("27"))
            .filter_map(|r| r.get("index").and_then(|i| i.parse().ok()))
            .collect();
        indexes.iter().all(|i| got.contains(i))
    }));
    fw.stop();
}

#[test]
fn method3_resumes_after_an_error_page_between_ranges() {
    // One range is answered by a 503 page instead of the package's bytes.
    let (server, dev, pkg, ret) = ranged_upgrade_meeting(Fault::new(FaultKind::Status(503)));
    assert_eq!(ret, 0, "resumed, not -19");
    assert_eq!(dev.current_binary(), pkg.binary);
    let statuses: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/data/emfw.cfg")
        .map(|r| r.status)
        .collect();
    assert!(statuses.contains(&503), "the fault fired: {statuses:?}");
}

#[test]
fn unsigned_packages_are_refused_unless_the_config_opts_in() {
    let server = start_server(quick_server_config());
    // Neither a key nor the opt-in: nothing can be installed.
    let dev = Device::new(&server, "");
    let dir = dev.dir.path();
    let script = dir.join("evil.sh");
    std::fs::write(&script, b"#!/bin/sh\necho owned\n").unwrap();
    let version: FirmwareVersion = "99.0.0".parse().unwrap();
    let out = dir.join("script-pkg");
    let built = build_package_with(
        &out,
        &PackageSpec {
            binary: &script,
            version: &version,
            target: running_target(),
            board_configs: &[],
            compression: Compression::Gzip,
        },
        None,
    )
    .unwrap();
    server.serve_file("/s/emfw.cfg", std::fs::read(&out).unwrap());
    let params = format!(
        "type=1,checksum={},size={},url=/s/emfw.cfg",
        built.md5, built.size
    );
    let fw = dev.start();
    assert!(wait_online(&server));
    assert_eq!(upgrade(&server, &params), -24, "unsigned, no key: refused");
    fw.stop();
    assert_eq!(dev.current_binary(), b"old firmware");
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.query_value("url").is_some()),
        "refused before anything was downloaded"
    );

    // A signing key configured: an unsigned package is still refused.
    let keyed = Device::new(&server, KEYED);
    let fw = keyed.start();
    assert!(wait_online(&server));
    assert_eq!(upgrade(&server, &params), -24, "unsigned, key: refused");
    fw.stop();
    assert_eq!(keyed.current_binary(), b"old firmware");

    // The explicit opt-in installs it.
    let opted = Device::new(&server, "allow_unsigned = true");
    let fw = opted.start();
    assert!(wait_online(&server));
    assert_eq!(upgrade(&server, &params), 0, "opted in");
    fw.stop();
    assert_eq!(opted.current_binary(), b"#!/bin/sh\necho owned\n");
}
