//! The firmware package `emfw.cfg`: a tar, optionally gzip-compressed, holding
//!
//! 1. `manifest.toml` (always the first entry): format, firmware version, target
//!    triple, the name of the binary and every file with its size and SHA-256;
//! 2. `manifest.sig` (second entry; required unless the device opted in to
//!    unsigned packages): an RSA PKCS#1 v1.5 signature with SHA-256 over the
//!    exact manifest bytes;
//! 3. the files the manifest lists: the binary `lintel` and optionally
//!    `board-configs/*.toml`.
//!
//! The manifest comes first so that a package is checked (signature, target,
//! version, free space) before a single file is unpacked, while reading the package
//! as a stream: nothing is held in memory beyond the manifest and 64 KiB buffers.
//!
//! Unpacking refuses anything a firmware package has no use for: absolute paths,
//! `..`, links of any kind (refusing all links is simpler and stricter than telling
//! links inside the tree from links out of it), device nodes and fifos, files not
//! in the manifest, oversize entries and too many entries.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::return_code;
use super::space::FreeSpace;

/// The only file name the UPGRADE command accepts (Return=-25 otherwise).
pub const PACKAGE_FILE_NAME: &str = "emfw.cfg";
/// Path of the manifest inside the package.
pub const MANIFEST_PATH: &str = "manifest.toml";
/// Path of the detached manifest signature inside the package.
pub const SIGNATURE_PATH: &str = "manifest.sig";
/// The manifest format this firmware writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Name of the firmware binary inside the package and inside a slot.
pub const BINARY_NAME: &str = "lintel";
/// Directory of board configuration files inside the package and inside a slot.
pub const BOARD_CONFIG_DIR: &str = "board-configs";

const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
const MAX_SIGNATURE_BYTES: u64 = 2048;
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// Everything that can go wrong while building, checking or unpacking a package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("package is not a readable tar or tar.gz: {0}")]
    Malformed(String),
    #[error("bad manifest: {0}")]
    Manifest(String),
    #[error("package entry {path:?} refused: {reason}")]
    RefusedEntry { path: String, reason: String },
    #[error("file {path} listed in the manifest is missing from the package")]
    MissingFile { path: String },
    #[error("{path}: sha256 {actual} does not match the manifest ({expected})")]
    FileChecksum {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("signature check failed: {0}")]
    Signature(String),
    #[error("package is built for {package}, this device runs {device}")]
    TargetMismatch { package: String, device: String },
    #[error("package version {package} is older than the running {running}")]
    OlderVersion { package: String, running: String },
    #[error("not enough space in {dir}: need {needed} bytes, {available} available")]
    InsufficientSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("cannot sign the manifest: {0}")]
    Signing(String),
}

impl PackageError {
    /// The `Return=` value of Appendix 1 for the UPGRADE command result.
    pub fn return_code(&self) -> i32 {
        match self {
            PackageError::Read { .. } => return_code::READ_FAILED,
            PackageError::Write { .. } => return_code::WRITE_FAILED,
            PackageError::Malformed(_)
            | PackageError::Manifest(_)
            | PackageError::RefusedEntry { .. }
            | PackageError::MissingFile { .. }
            | PackageError::Signature(_)
            | PackageError::Signing(_) => return_code::BAD_PACKAGE,
            PackageError::FileChecksum { .. } => return_code::CHECKSUM,
            PackageError::TargetMismatch { .. } => return_code::PLATFORM_MISMATCH,
            PackageError::OlderVersion { .. } => return_code::OLDER_VERSION,
            PackageError::InsufficientSpace { .. } => return_code::NO_SPACE,
        }
    }
}

fn refused(path: &str, reason: impl Into<String>) -> PackageError {
    PackageError::RefusedEntry {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The package manifest (`manifest.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format; this firmware reads format [`MANIFEST_FORMAT`] only.
    pub format: u32,
    /// Firmware version of the binary in the package.
    pub version: String,
    /// Rust target triple the binary was built for.
    pub target: String,
    /// Path (inside the package) of the firmware binary; must be listed in `files`.
    pub binary: String,
    /// Every file of the package except the manifest and its signature.
    pub files: Vec<ManifestFile>,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the file contents.
    pub sha256: String,
}

impl Manifest {
    /// Parse and validate manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PackageError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PackageError::Manifest("not UTF-8".to_owned()))?;
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| PackageError::Manifest(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The manifest as TOML text (what gets signed and stored in the package).
    pub fn to_toml(&self) -> Result<String, PackageError> {
        toml::to_string(self).map_err(|e| PackageError::Manifest(e.to_string()))
    }

    /// Check the fields a package cannot be trusted without.
    pub fn validate(&self) -> Result<(), PackageError> {
        let bad = |msg: String| Err(PackageError::Manifest(msg));
        if self.format != MANIFEST_FORMAT {
            return bad(format!(
                "format {} is not the supported format {MANIFEST_FORMAT}",
                self.format
            ));
        }
        if let Err(e) = self.version.parse::<FirmwareVersion>() {
            return bad(e.to_string());
        }
        if self.target.is_empty() || self.target.len() > 64 {
            return bad("target triple missing or too long".to_owned());
        }
        let mut seen = BTreeMap::new();
        for file in &self.files {
            let normal = safe_relative_path(file.path.as_bytes())
                .map_err(|reason| PackageError::Manifest(format!("{:?}: {reason}", file.path)))?;
            if normal == Path::new(MANIFEST_PATH) || normal == Path::new(SIGNATURE_PATH) {
                return bad(format!("{:?} is reserved", file.path));
            }
            if seen.insert(normal, ()).is_some() {
                return bad(format!("{:?} listed twice", file.path));
            }
            let hex_ok = file.sha256.len() == 64
                && file
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return bad(format!(
                    "{:?}: sha256 is not 64 lowercase hex digits",
                    file.path
                ));
            }
        }
        if !self.files.iter().any(|f| f.path == self.binary) {
            return bad(format!("binary {:?} is not among the files", self.binary));
        }
        Ok(())
    }

    /// The parsed firmware version.
    pub fn firmware_version(&self) -> Result<FirmwareVersion, PackageError> {
        self.version
            .parse()
            .map_err(|e: VersionParseError| PackageError::Manifest(e.to_string()))
    }

    /// Sum of all file sizes: the space an unpacked package needs.
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.size))
    }
}

/// Turn a tar entry path into a relative path of normal components, or say why not.
pub fn safe_relative_path(raw: &[u8]) -> Result<PathBuf, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "path is not UTF-8".to_owned())?;
    if text.is_empty() {
        return Err("empty path".to_owned());
    }
    if text.contains('\0') || text.contains('\\') {
        return Err("path holds NUL or backslash".to_owned());
    }
    let mut out = PathBuf::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains ..".to_owned()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path".to_owned());
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err("path names no file".to_owned());
    }
    Ok(out)
}

/// Limits applied while unpacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Largest single file.
    pub max_entry_bytes: u64,
    /// Largest sum of all files.
    pub max_total_bytes: u64,
    /// Most tar entries (files and directories) after the manifest and signature.
    pub max_entries: usize,
    /// Free space that must remain on the file system after the download and
    /// the unpacked files: the database keeps logging events meanwhile (-18).
    pub keep_free_bytes: u64,
}

/// The default of [`UnpackLimits::keep_free_bytes`]: room for some 40,000
/// events and their outbox rows.
pub const KEEP_FREE_BYTES: u64 = 8 * 1024 * 1024;

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_entry_bytes: 64 * 1024 * 1024,
            max_total_bytes: 128 * 1024 * 1024,
            max_entries: 256,
            keep_free_bytes: KEEP_FREE_BYTES,
        }
    }
}

/// What the running device accepts.
#[derive(Debug, Clone)]
pub struct InstallPolicy {
    /// The device's target triple (see [`super::running_target`]).
    pub target: String,
    /// The running firmware version; older packages are refused (-23).
    pub running_version: FirmwareVersion,
    /// Allow installing an older version (an operator's deliberate downgrade).
    pub allow_downgrade: bool,
    /// The key a package's manifest must be signed with.
    pub public_key: Option<RsaPublicKey>,
    /// Accept a package without a signature (`[upgrade] allow_unsigned`, an
    /// explicit opt-in). A signature present is still checked when a key is
    /// configured.
    pub allow_unsigned: bool,
    pub limits: UnpackLimits,
}

impl InstallPolicy {
    /// Policy for this binary: its own target and version, no key (so no
    /// package is accepted until one is set, or unsigned ones are allowed),
    /// default limits.
    pub fn for_running_firmware() -> Self {
        InstallPolicy {
            target: super::running_target().to_owned(),
            running_version: super::running_version(),
            allow_downgrade: false,
            public_key: None,
            allow_unsigned: false,
            limits: UnpackLimits::default(),
        }
    }

    /// Why no package can pass this policy, if none can: without a key only
    /// the opt-in lets a package through.
    pub fn refuses_every_package(&self) -> Option<&'static str> {
        (self.public_key.is_none() && !self.allow_unsigned).then_some(
            "no [upgrade] public_key is configured to check packages against \
             (and allow_unsigned is not set)",
        )
    }
}

/// A package that passed every check and was unpacked into `staging`.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    pub manifest: Manifest,
    pub version: FirmwareVersion,
    /// The staging directory: the files of the manifest plus `manifest.toml`.
    pub staging: PathBuf,
    /// Whether the manifest signature was checked against the configured key.
    pub signature_verified: bool,
}

impl VerifiedPackage {
    /// The unpacked firmware binary.
    pub fn binary_path(&self) -> PathBuf {
        self.staging.join(&self.manifest.binary)
    }
}

/// Open a package for streaming: plain tar, or tar.gz detected by its magic bytes.
pub fn open_package(path: &Path) -> Result<Box<dyn Read>, PackageError> {
    let file = File::open(path).map_err(|source| PackageError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(COPY_BUFFER_BYTES, file);
    let head = reader.fill_buf().map_err(|source| PackageError::Read {
        path: path.to_owned(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::GzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Check the package at `package` against `policy` and unpack it into `staging`
/// (removed first if it exists; removed again if any check fails).
pub fn verify_and_unpack(
    package: &Path,
    staging: &Path,
    policy: &InstallPolicy,
    space: &dyn FreeSpace,
) -> Result<VerifiedPackage, PackageError> {
    let reader = open_package(package)?;
    let result = unpack_stream(reader, staging, policy, space);
    if result.is_err() {
        // Best effort: a half-unpacked staging directory must not be installed.
        let _ = fs::remove_dir_all(staging);
    }
    result
}

fn prepare_staging(staging: &Path) -> Result<(), PackageError> {
    let write_err = |source| PackageError::Write {
        path: staging.to_owned(),
        source,
    };
    match fs::symlink_metadata(staging) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(staging).map_err(write_err)?,
        Ok(_) => fs::remove_file(staging).map_err(write_err)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    fs::create_dir_all(staging).map_err(write_err)
}

fn read_small_entry<R: Read>(
    entry: &mut R,
    size: u64,
    limit: u64,
    name: &str,
) -> Result<Vec<u8>, PackageError> {
    if size > limit {
        return Err(refused(name, format!("{size} bytes, more than {limit}")));
    }
    let mut bytes = Vec::new();
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| PackageError::Malformed(e.to_string()))?;
    if u64::try_from(bytes.len()).ok() != Some(size) {
        return Err(refused(name, "entry shorter or longer than its header"));
    }
    Ok(bytes)
}

fn unpack_stream(
    reader: Box<dyn Read>,
    staging: &Path,
    policy: &InstallPolicy,
    space: &dyn FreeSpace,
) -> Result<VerifiedPackage, PackageError> {
    let malformed = |e: io::Error| PackageError::Malformed(e.to_string());
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries().map_err(malformed)?;

    // 1. The manifest, first.
    let mut first = match entries.next() {
        Some(entry) => entry.map_err(malformed)?,
        None => return Err(PackageError::Malformed("empty archive".to_owned())),
    };
    let first_path = safe_relative_path(&first.path_bytes()).ok();
    if first_path.as_deref() != Some(Path::new(MANIFEST_PATH))
        || !first.header().entry_type().is_file()
    {
        return Err(PackageError::Manifest(format!(
            "the first entry must be the regular file {MANIFEST_PATH}"
        )));
    }
    let manifest_size = first.size();
    let manifest_bytes =
        read_small_entry(&mut first, manifest_size, MAX_MANIFEST_BYTES, MANIFEST_PATH)?;
    drop(first);

    // 2. The signature, if any, second. The entry after the manifest is kept aside
    //    when it is not the signature.
    let mut signature = None;
    let mut pending = None;
    if let Some(entry) = entries.next() {
        let mut entry = entry.map_err(malformed)?;
        let is_sig = safe_relative_path(&entry.path_bytes()).ok().as_deref()
            == Some(Path::new(SIGNATURE_PATH));
        if is_sig {
            if !entry.header().entry_type().is_file() {
                return Err(refused(SIGNATURE_PATH, "not a regular file"));
            }
            let size = entry.size();
            signature = Some(read_small_entry(
                &mut entry,
                size,
                MAX_SIGNATURE_BYTES,
                SIGNATURE_PATH,
            )?);
        } else {
            pending = Some(entry);
        }
    }

    // 3. Checks before anything is written: signature first, so that an unsigned
    //    or forged manifest is not even interpreted further.
    let signature_verified = match (&policy.public_key, &signature) {
        (Some(key), Some(sig)) => {
            verify_manifest_signature(key, &manifest_bytes, sig)?;
            true
        }
        _ if policy.allow_unsigned => {
            log::warn!("installing a package whose signature is not checked (allow_unsigned)");
            false
        }
        (Some(_), None) => {
            return Err(PackageError::Signature(
                "the package is unsigned and allow_unsigned is not set".to_owned(),
            ))
        }
        (None, _) => {
            return Err(PackageError::Signature(
                "no public key is configured to check the package against".to_owned(),
            ))
        }
    };
    let manifest = Manifest::parse(&manifest_bytes)?;
    if manifest.target != policy.target {
        return Err(PackageError::TargetMismatch {
            package: manifest.target.clone(),
            device: policy.target.clone(),
        });
    }
    let version = manifest.firmware_version()?;
    if version < policy.running_version && !policy.allow_downgrade {
        return Err(PackageError::OlderVersion {
            package: version.to_string(),
            running: policy.running_version.to_string(),
        });
    }
    let total = manifest.total_size();
    if total > policy.limits.max_total_bytes {
        return Err(PackageError::Manifest(format!(
            "files total {total} bytes, more than the limit {}",
            policy.limits.max_total_bytes
        )));
    }
    if let Some(big) = manifest
        .files
        .iter()
        .find(|f| f.size > policy.limits.max_entry_bytes)
    {
        return Err(refused(
            &big.path,
            format!(
                "{} bytes, more than the limit {}",
                big.size, policy.limits.max_entry_bytes
            ),
        ));
    }

    prepare_staging(staging)?;
    let available = space
        .available_bytes(staging)
        .map_err(|source| PackageError::Read {
            path: staging.to_owned(),
            source,
        })?;
    let needed = total
        .saturating_add(u64::try_from(manifest_bytes.len()).unwrap_or(u64::MAX))
        .saturating_add(policy.limits.keep_free_bytes);
    if needed > available {
        return Err(PackageError::InsufficientSpace {
            dir: staging.to_owned(),
            needed,
            available,
        });
    }

    // 4. The files.
    let expected: BTreeMap<PathBuf, &ManifestFile> = manifest
        .files
        .iter()
        .filter_map(|f| safe_relative_path(f.path.as_bytes()).ok().map(|p| (p, f)))
        .collect();
    let binary_path =
        safe_relative_path(manifest.binary.as_bytes()).map_err(PackageError::Manifest)?;
    let mut written: BTreeMap<PathBuf, ()> = BTreeMap::new();
    let mut count = 0usize;
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];

    let mut next = pending.map(Ok);
    loop {
        let entry = match next.take() {
            Some(e) => e,
            None => match entries.next() {
                Some(e) => e.map_err(malformed),
                None => break,
            },
        };
        let mut entry = entry?;
        count = count.saturating_add(1);
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        if count > policy.limits.max_entries {
            return Err(refused(
                &shown,
                format!("more than {} entries", policy.limits.max_entries),
            ));
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let rel = safe_relative_path(&raw_path).map_err(|reason| refused(&shown, reason))?;
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(refused(
                &shown,
                "links are not allowed in a firmware package",
            ));
        }
        if kind.is_dir() {
            let dir = staging.join(&rel);
            fs::create_dir_all(&dir).map_err(|source| PackageError::Write { path: dir, source })?;
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(refused(
                &shown,
                format!("entry type {kind:?} is not allowed"),
            ));
        }
        let Some(listed) = expected.get(&rel) else {
            return Err(refused(&shown, "not listed in the manifest"));
        };
        if written.insert(rel.clone(), ()).is_some() {
            return Err(refused(&shown, "appears twice"));
        }
        let size = entry.size();
        if size != listed.size {
            return Err(refused(
                &shown,
                format!("{size} bytes, the manifest says {}", listed.size),
            ));
        }
        let dest = staging.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|source| PackageError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        let mode = if rel == binary_path { 0o755 } else { 0o644 };
        let actual = copy_entry(&mut entry, size, &dest, mode, &mut buf)?;
        if actual != listed.sha256 {
            return Err(PackageError::FileChecksum {
                path: listed.path.clone(),
                expected: listed.sha256.clone(),
                actual,
            });
        }
    }

    if let Some(missing) = expected.keys().find(|p| !written.contains_key(*p)) {
        return Err(PackageError::MissingFile {
            path: missing.display().to_string(),
        });
    }
    let manifest_copy = staging.join(MANIFEST_PATH);
    fs::write(&manifest_copy, &manifest_bytes).map_err(|source| PackageError::Write {
        path: manifest_copy,
        source,
    })?;
    Ok(VerifiedPackage {
        manifest,
        version,
        staging: staging.to_owned(),
        signature_verified,
    })
}

/// Copy exactly `size` bytes of an entry into a new file, returning its SHA-256.
fn copy_entry<R: Read>(
    entry: &mut R,
    size: u64,
    dest: &Path,
    mode: u32,
    buf: &mut [u8],
) -> Result<String, PackageError> {
    let write_err = |source| PackageError::Write {
        path: dest.to_owned(),
        source,
    };
    // create_new: never write through something that already exists there.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .map_err(write_err)?;
    let mut hasher = Sha256::new();
    let mut remaining = size;
    while remaining > 0 {
        let want = usize::try_from(remaining.min(u64::try_from(buf.len()).unwrap_or(u64::MAX)))
            .unwrap_or(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = entry
            .read(chunk)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        if n == 0 {
            return Err(PackageError::Malformed(format!(
                "{} ends early",
                dest.display()
            )));
        }
        let data = chunk.get(..n).unwrap_or_default();
        hasher.update(data);
        file.write_all(data).map_err(write_err)?;
        remaining = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
    }
    file.sync_all().map_err(write_err)?;
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Stream a file through a hasher; returns (size, digest).
fn hash_file<D: Digest>(path: &Path) -> Result<(u64, Vec<u8>), PackageError> {
    let read_err = |source| PackageError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        let data = buf.get(..n).unwrap_or_default();
        hasher.update(data);
        size = size.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
    Ok((size, hasher.finalize().to_vec()))
}

mod build;
mod signing;
mod version;

pub use build::{build_package, build_package_with, BuiltPackage, Compression, PackageSpec};
pub use signing::{
    parse_private_key_pem, parse_public_key_pem, sign_manifest, verify_manifest_signature,
};
pub use version::{FirmwareVersion, VersionParseError};

#[cfg(test)]
mod tests;
