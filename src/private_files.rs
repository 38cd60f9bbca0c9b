//! Files only the firmware's own user may read: the data directory (0700),
//! the database and the device's private key (0600). Created with those
//! modes, and tightened when an older install left them wider.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700; an existing `dir`
/// readable by others is tightened to 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    restrict(dir, DIR_MODE);
    Ok(())
}

/// Removes group and other permissions from `path` if it has any. A file
/// the firmware cannot change (another owner) is left as it is, with a
/// warning: the firmware still runs.
pub fn restrict(path: &Path, mode: u32) {
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) => log::info!(
            "{} was readable by other users; its mode is now {mode:o}",
            path.display()
        ),
        Err(e) => log::warn!(
            "{} is readable by other users and cannot be restricted: {e}",
            path.display()
        ),
    }
}

/// Creates `path` empty with mode 0600 unless it exists; an existing one
/// is tightened. SQLite keeps the mode of a database file it opens and gives
/// its -wal and -shm files the same mode.
pub fn ensure_private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        // Also on a read-only file system, where creating would fail.
        restrict(path, FILE_MODE);
        return Ok(());
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` atomically (a 0600 temporary file, synced, then
/// renamed over `path`, then the directory synced).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The permission bits of `path` (tests and diagnostics).
pub fn mode_of(path: &Path) -> std::io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_files_are_created_owner_only_and_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir).unwrap(), 0o700);

        let file = dir.join("f");
        ensure_private_file(&file).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&file).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o600);

        let key = dir.join("k.pem");
        write_private_file(&key, b"one").unwrap();
        write_private_file(&key, b"two").unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"two");
        assert_eq!(mode_of(&key).unwrap(), 0o600);
        assert!(!key.with_extension("tmp").exists());
    }
}
