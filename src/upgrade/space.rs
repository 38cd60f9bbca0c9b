//! Free space on the file system that receives a download or an unpacked package.
//!
//! Behind a trait so the -18 (insufficient space) path is testable. The real
//! implementation asks `df -Pk`, which BusyBox and coreutils both provide: the
//! workspace denies `unsafe_code` and has no safe statvfs binding among its
//! dependencies (a `rustix::fs::statvfs` would be the better backend if one is added).

use std::io;
use std::path::Path;
use std::process::Command;

/// Bytes available to an unprivileged writer on the file system holding `dir`.
pub trait FreeSpace {
    fn available_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// The real file system, via `df -Pk DIR`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DfFreeSpace;

impl FreeSpace for DfFreeSpace {
    fn available_bytes(&self, dir: &Path) -> io::Result<u64> {
        let out = Command::new("df").arg("-Pk").arg(dir).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "df -Pk {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_df_available_kib(&String::from_utf8_lossy(&out.stdout))
            .map(|kib| kib.saturating_mul(1024))
            .ok_or_else(|| io::Error::other("unexpected df output"))
    }
}

/// The "Available" column (KiB) of POSIX `df -P` output: a header line, then one line
/// `name blocks used available capacity% mountpoint`. Name and mount point may hold
/// spaces, so the capacity column (`NN%`) anchors the parse.
fn parse_df_available_kib(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    let capacity = cols.iter().enumerate().skip(3).position(|(_, c)| {
        c.strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })?;
    let available = capacity.checked_add(3)?.checked_sub(1)?;
    cols.get(available)?.parse().ok()
}

/// A fixed amount of free space, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedFreeSpace(pub u64);

impl FreeSpace for FixedFreeSpace {
    fn available_bytes(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_posix_df_output() {
        let text = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n\
                    /dev/mmcblk0p2     7312536 2312000   4650000      34% /\n";
        assert_eq!(parse_df_available_kib(text), Some(4_650_000));
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      my fs 100 40 60 40% /mnt/my dir\n";
        assert_eq!(parse_df_available_kib(spaced), Some(60));
        assert_eq!(parse_df_available_kib("only a header\n"), None);
    }

    #[test]
    fn real_df_reports_something_for_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = DfFreeSpace.available_bytes(dir.path()).unwrap();
        assert!(bytes > 0);
    }
}
