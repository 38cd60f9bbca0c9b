//! scripts/install.sh lays out a target root the way the firmware's A/B slots and
//! the systemd unit expect; scripts/flash.sh --dry-run prints a deployment that uses
//! it. Both scripts are run for real here (install.sh against a temporary root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn install(root: &Path, extra: &[&str]) -> Output {
    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .arg("--root")
        .arg(root)
        .args(extra)
        .output()
        .expect("run install.sh");
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write(path: &Path, data: &[u8]) -> String {
    fs::write(path, data).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn fresh_install_lays_out_slots_config_data_and_unit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let bin = write(&dir.path().join("lintel-armv7"), b"binary v1");
    let cfg = write(&dir.path().join("my.toml"), b"[server]\n");
    install(&root, &["--binary", &bin, "--config", &cfg]);

    let opt = root.join("opt/lintel");
    assert_eq!(fs::read(opt.join("slots/a/lintel")).unwrap(), b"binary v1");
    let mode = fs::metadata(opt.join("slots/a/lintel"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(opt.join("slots/b").is_dir());
    assert_eq!(
        fs::read_link(opt.join("current")).unwrap(),
        Path::new("slots/a")
    );
    assert_eq!(fs::read(opt.join("current/lintel")).unwrap(), b"binary v1");
    assert!(opt.join("slots/a/board-configs/sim-1door.toml").is_file());
    assert_eq!(
        fs::read(root.join("etc/lintel/lintel.toml")).unwrap(),
        b"[server]\n"
    );
    assert!(root.join("var/lib/lintel").is_dir());

    let unit = fs::read_to_string(root.join("etc/systemd/system/lintel.service")).unwrap();
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    // The unit starts the binary through the `current` link install.sh created.
    assert!(
        exec.starts_with("ExecStart=/opt/lintel/current/lintel "),
        "{exec}"
    );
    assert!(exec.contains("/etc/lintel/lintel.toml"), "{exec}");
    assert!(unit.contains("WorkingDirectory=/var/lib/lintel"));
    // The firmware speaks sd_notify (src/watchdog.rs, tests/watchdog.rs).
    for line in ["Type=notify", "NotifyAccess=main", "WatchdogSec=30"] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
}

#[test]
fn reinstall_is_idempotent_and_keeps_config_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let bin1 = write(&dir.path().join("v1"), b"binary v1");
    let cfg1 = write(&dir.path().join("c1.toml"), b"first = 1\n");
    install(&root, &["--binary", &bin1, "--config", &cfg1]);
    fs::write(root.join("var/lib/lintel/events.db"), b"precious").unwrap();

    let bin2 = write(&dir.path().join("v2"), b"binary v2");
    let cfg2 = write(&dir.path().join("c2.toml"), b"second = 2\n");
    install(&root, &["--binary", &bin2, "--config", &cfg2]);
    install(&root, &["--binary", &bin2]);

    let opt = root.join("opt/lintel");
    assert_eq!(fs::read(opt.join("current/lintel")).unwrap(), b"binary v2");
    assert_eq!(
        fs::read_link(opt.join("current")).unwrap(),
        Path::new("slots/a")
    );
    assert_eq!(
        fs::read(root.join("etc/lintel/lintel.toml")).unwrap(),
        b"first = 1\n"
    );
    assert_eq!(
        fs::read(root.join("etc/lintel/lintel.toml.new")).unwrap(),
        b"second = 2\n"
    );
    assert_eq!(
        fs::read(root.join("var/lib/lintel/events.db")).unwrap(),
        b"precious"
    );
    assert!(!opt.join("slots/a/lintel.tmp").exists());
}

#[test]
fn reinstall_follows_the_active_slot_after_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let bin = write(&dir.path().join("v1"), b"binary v1");
    install(&root, &["--binary", &bin]);
    // An upgrade switched to slot b (as src/upgrade/slots.rs does).
    let opt = root.join("opt/lintel");
    fs::remove_file(opt.join("current")).unwrap();
    std::os::unix::fs::symlink("slots/b", opt.join("current")).unwrap();
    let bin2 = write(&dir.path().join("v2"), b"binary v2");
    install(&root, &["--binary", &bin2]);
    assert_eq!(fs::read(opt.join("slots/b/lintel")).unwrap(), b"binary v2");
    assert_eq!(fs::read(opt.join("slots/a/lintel")).unwrap(), b"binary v1");
}

#[test]
fn install_refuses_a_foreign_current_link_and_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("opt/lintel")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", root.join("opt/lintel/current")).unwrap();
    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .args(["--root", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not at slots/a or slots/b"));

    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "--root is required");
}

#[test]
fn flash_dry_run_prints_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let bin = write(&dir.path().join("lintel"), b"binary");
    let out = Command::new("bash")
        .arg(repo().join("scripts/flash.sh"))
        .args([
            "board.example",
            "--dry-run",
            "--binary",
            &bin,
            "--port",
            "2222",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("+ ")).collect();
    assert!(
        !lines.iter().any(|l| l.contains("cross-build.sh")),
        "--binary skips the build"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("+ scp -P 2222") && l.contains(&bin)));
    assert!(lines.iter().any(|l| l.starts_with("+ ssh -p 2222")
        && l.contains("install.sh")
        && l.contains("--root")));
    assert!(lines
        .iter()
        .any(|l| l.contains("systemctl") && l.contains("restart")));
    assert!(text.contains("dry run"));
}

#[test]
fn scripts_parse() {
    for script in ["cross-build.sh", "ci-arm.sh", "size-report.sh", "flash.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(repo().join("scripts").join(script))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("sh")
        .arg("-n")
        .arg(repo().join("scripts/install.sh"))
        .output()
        .unwrap();
    assert!(out.status.success());
}
