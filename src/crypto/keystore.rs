//! The device's RSA key pair: generated once, kept in the data directory as
//! `push-key.pem` (PKCS#8 PEM, mode 0600), loaded at every exchange after.
//!
//! Generating a 2048-bit key takes seconds on a small ARM board, far longer
//! than the session may go without reporting to the watchdog, so it runs
//! on a thread of its own; until it is done the session hears
//! [`KeyState::Generating`].

use super::exchange::DeviceKey;
use super::CryptoError;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "push-key.pem";
/// Size of the device's key.
pub const KEY_BITS: usize = 2048;

/// Whether the device key can be used now.
#[derive(Debug, Clone)]
pub enum KeyState {
    Ready(Arc<DeviceKey>),
    /// Being generated (first start); ask again later.
    Generating,
    /// Generation or storage failed; the next request tries again.
    Failed(String),
}

/// Where the session gets the device key from.
pub trait KeySource: Send + Sync {
    /// The key if it is available now; starts making it otherwise.
    fn device_key(&self) -> KeyState;
}

/// A fixed key (tests, tools).
pub struct FixedKey(pub Arc<DeviceKey>);

impl KeySource for FixedKey {
    fn device_key(&self) -> KeyState {
        KeyState::Ready(self.0.clone())
    }
}

/// A new 2048-bit key as PKCS#8 PEM.
pub fn generate_pem() -> Result<zeroize::Zeroizing<String>, CryptoError> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| CryptoError::Rsa(e.to_string()))?;
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| CryptoError::Rsa(e.to_string()))
}

/// Reads a key file: `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<DeviceKey>, CryptoError> {
    let pem = match std::fs::read_to_string(path) {
        Ok(pem) => zeroize::Zeroizing::new(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CryptoError::KeyFile {
                path: path.to_owned(),
                source,
            })
        }
    };
    let bad = |why: String| CryptoError::BadKeyFile {
        path: path.to_owned(),
        why,
    };
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if key.n().bits() < KEY_BITS {
        return Err(bad(format!("{}-bit key, need {KEY_BITS}", key.n().bits())));
    }
    crate::private_files::restrict(path, crate::private_files::FILE_MODE);
    Ok(Some(DeviceKey::new(key)?))
}

enum Slot {
    /// Not looked at yet, or the last attempt failed.
    Unknown,
    Generating,
    Ready(Arc<DeviceKey>),
    Failed(String),
}

/// The key in `<data_dir>/push-key.pem`, generated in the background when
/// missing or unreadable.
pub struct FileKeyStore {
    path: PathBuf,
    slot: Arc<Mutex<Slot>>,
}

impl FileKeyStore {
    pub fn new(data_dir: &Path) -> FileKeyStore {
        FileKeyStore {
            path: data_dir.join(KEY_FILE),
            slot: Arc::new(Mutex::new(Slot::Unknown)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn spawn_generator(&self) -> Result<(), String> {
        let path = self.path.clone();
        let slot = self.slot.clone();
        std::thread::Builder::new()
            .name("keygen".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let result = generate_pem().and_then(|pem| {
                    crate::private_files::write_private_file(&path, pem.as_bytes()).map_err(
                        |source| CryptoError::KeyFile {
                            path: path.clone(),
                            source,
                        },
                    )?;
                    load(&path)?.ok_or_else(|| CryptoError::BadKeyFile {
                        path: path.clone(),
                        why: "vanished after writing".into(),
                    })
                });
                let next = match result {
                    Ok(key) => {
                        log::info!(
                            "device key for encrypted PUSH generated in {:.1}s and kept in {}",
                            started.elapsed().as_secs_f32(),
                            path.display()
                        );
                        Slot::Ready(Arc::new(key))
                    }
                    Err(e) => {
                        log::error!("cannot make the device key: {e}");
                        Slot::Failed(e.to_string())
                    }
                };
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = next;
            })
            .map(|_| ())
            .map_err(|e| format!("cannot start the key generator: {e}"))
    }
}

impl KeySource for FileKeyStore {
    fn device_key(&self) -> KeyState {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Slot::Ready(key) => return KeyState::Ready(key.clone()),
            Slot::Generating => return KeyState::Generating,
            Slot::Failed(why) => {
                let why = why.clone();
                *slot = Slot::Unknown;
                return KeyState::Failed(why);
            }
            Slot::Unknown => {}
        }
        match load(&self.path) {
            Ok(Some(key)) => {
                let key = Arc::new(key);
                *slot = Slot::Ready(key.clone());
                return KeyState::Ready(key);
            }
            Ok(None) => log::info!(
                "no device key in {} yet: generating one ({KEY_BITS} bits)",
                self.path.display()
            ),
            Err(e) => {
                // The server learns the key anew at every exchange, so a
                // replacement costs nothing but the generation.
                let aside = self.path.with_extension("pem.bad");
                log::warn!(
                    "{e}; moving it to {} and generating a new key",
                    aside.display()
                );
                let _ = std::fs::rename(&self.path, &aside);
            }
        }
        match self.spawn_generator() {
            Ok(()) => {
                *slot = Slot::Generating;
                KeyState::Generating
            }
            Err(why) => KeyState::Failed(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_files::mode_of;
    use std::time::{Duration, Instant};

    fn wait_ready(store: &FileKeyStore) -> Arc<DeviceKey> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match store.device_key() {
                KeyState::Ready(k) => return k,
                KeyState::Generating if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => panic!("no key: {other:?}"),
            }
        }
    }

    #[test]
    fn a_key_file_is_loaded_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let pem = super::super::test_keys::device_pem();
        std::fs::write(&path, pem.as_bytes()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = FileKeyStore::new(dir.path());
        let key = wait_ready(&store);
        assert_eq!(key.spki_der, super::super::test_keys::device().spki_der);
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        // Asked again, the same key without reading the file.
        std::fs::remove_file(&path).unwrap();
        assert!(Arc::ptr_eq(&key, &wait_ready(&store)));
    }

    #[test]
    fn a_missing_or_broken_key_is_generated_once_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nnot a key\n").unwrap();
        let store = FileKeyStore::new(dir.path());
        assert!(matches!(store.device_key(), KeyState::Generating));
        let key = wait_ready(&store);
        assert!(dir.path().join("push-key.pem.bad").exists());
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        let again = FileKeyStore::new(dir.path());
        assert_eq!(wait_ready(&again).spki_der, key.spki_der);
        assert!(format!("{key:?}").contains("2048"));
    }

    #[test]
    fn a_small_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        std::fs::write(
            &path,
            small.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("1024-bit"), "{e}");
    }
}
