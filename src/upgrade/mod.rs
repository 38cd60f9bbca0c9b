//! Firmware upgrade: the `emfw.cfg` package format, the download checks of the
//! UPGRADE command (spec 12.4.1) and the A/B slot install with automatic rollback.
//!
//! Everything here is plain library code with no sockets: the session feeds the
//! downloaded bytes into [`download::PackageFile`] (directly, or through a
//! [`download::Base64Decoder`] for method 1), [`package::verify_and_unpack`]
//! checks and unpacks the package into a staging directory, and [`slots::Slots`]
//! installs it into the inactive slot and switches over. Each error type maps to the
//! `Return=` value of Appendix 1 through `return_code()`.
//!
//! Layout on the device (see `scripts/install.sh` and `packaging/lintel.service`):
//!
//! ```text
//! /opt/lintel/slots/a/lintel      slot A (binary, manifest.toml, board-configs/)
//! /opt/lintel/slots/b/lintel      slot B
//! /opt/lintel/current -> slots/a  what systemd starts
//! /opt/lintel/previous -> slots/b the slot to roll back to
//! /opt/lintel/trial.toml          present while a new version is on trial
//! /opt/lintel/rollback.toml       a rollback still to be reported (Appendix 17)
//! ```
//!
//! The data directory (events, tables) lives outside the slots, so an upgrade or a
//! rollback never touches it; schema migrations are the store's business.

pub mod cli;
pub mod download;
pub mod executor;
pub mod lifecycle;
pub mod package;
pub mod slots;
pub mod space;

/// `Return=` values of Appendix 1 used by the UPGRADE command.
pub mod return_code {
    /// Incorrect data parameter (a required UPGRADE field is missing or unparsable).
    pub const BAD_PARAMETER: i32 = -11;
    /// Failed to write the file.
    pub const WRITE_FAILED: i32 = -15;
    /// Failed to read the file.
    pub const READ_FAILED: i32 = -16;
    /// The device has insufficient space.
    pub const NO_SPACE: i32 = -18;
    /// Checksum error.
    pub const CHECKSUM: i32 = -19;
    /// The length of the received data is inconsistent with the specified length.
    pub const LENGTH_MISMATCH: i32 = -20;
    /// The firmware platform of the package is not the local platform.
    pub const PLATFORM_MISMATCH: i32 = -22;
    /// The firmware version of the package is older than the running one.
    pub const OLDER_VERSION: i32 = -23;
    /// Incorrect flag of the upgrade file: used for every malformed or refused package.
    pub const BAD_PACKAGE: i32 = -24;
    /// The received file for firmware upgrade is not named emfw.cfg.
    pub const BAD_FILE_NAME: i32 = -25;
    /// Incorrect URL format.
    pub const BAD_URL: i32 = -618;
    /// Failed to upgrade the firmware (install or switch failed).
    pub const UPGRADE_FAILED: i32 = -720;
    /// The device failed to download the file.
    pub const DOWNLOAD_FAILED: i32 = -721;
}

/// The target triple this binary was built for, compared with the package manifest
/// (a mismatch is Return=-22). Derived from `cfg` because Rust exposes no triple;
/// the project ships exactly these targets.
pub fn running_target() -> &'static str {
    if cfg!(all(
        target_arch = "arm",
        target_os = "linux",
        target_env = "gnu"
    )) {
        "armv7-unknown-linux-gnueabihf"
    } else if cfg!(all(
        target_arch = "aarch64",
        target_os = "linux",
        target_env = "gnu"
    )) {
        "aarch64-unknown-linux-gnu"
    } else if cfg!(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    )) {
        "x86_64-unknown-linux-gnu"
    } else {
        "unknown"
    }
}

/// The version of the running firmware (the crate version).
pub fn running_version() -> package::FirmwareVersion {
    // The crate version is always valid semver, so this cannot fail in practice; a
    // fallback keeps it panic-free anyway.
    env!("CARGO_PKG_VERSION")
        .parse()
        .unwrap_or_else(|_| package::FirmwareVersion::zero())
}

/// Replace the running process with the binary now behind the `current` link, with
/// the same arguments. Returns only on failure; the caller should then exit non-zero
/// so that the service manager restarts it (which also starts the new binary).
pub fn reexec(binary: &std::path::Path) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::Command::new(binary).args(args).exec()
}
