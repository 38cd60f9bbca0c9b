//! Building a package on the build machine (`lintel-mkupgrade`): the
//! manifest of the binary and board configurations, its signature, and the
//! tar (gzip-compressed by default) with the manifest first. The device
//! never builds packages; it only checks and unpacks them.

use super::{
    hash_file, hex, sign_manifest, FirmwareVersion, Manifest, ManifestFile, PackageError,
    BINARY_NAME, BOARD_CONFIG_DIR, MANIFEST_FORMAT, MANIFEST_PATH, SIGNATURE_PATH,
};
use md5::Md5;
use rsa::RsaPrivateKey;
use sha2::Sha256;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Compression of a built package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Gzip,
}

/// Everything that goes into a package.
#[derive(Debug, Clone)]
pub struct PackageSpec<'a> {
    pub binary: &'a Path,
    pub version: &'a FirmwareVersion,
    pub target: &'a str,
    /// Copied to `board-configs/<file name>`.
    pub board_configs: &'a [PathBuf],
    pub compression: Compression,
}

/// A built package: what the server needs for the UPGRADE command.
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    pub path: PathBuf,
    pub size: u64,
    /// Lowercase hex MD5 of the package file (the `checksum=` of the command).
    pub md5: String,
    pub manifest: Manifest,
}

/// Build a gzip-compressed package at `out` (written to a temporary name first).
pub fn build_package(
    out: &Path,
    binary: &Path,
    version: &FirmwareVersion,
    target: &str,
    board_configs: &[PathBuf],
    signing_key: Option<&RsaPrivateKey>,
) -> Result<BuiltPackage, PackageError> {
    let spec = PackageSpec {
        binary,
        version,
        target,
        board_configs,
        compression: Compression::Gzip,
    };
    build_package_with(out, &spec, signing_key)
}

/// Build a package from a full [`PackageSpec`].
pub fn build_package_with(
    out: &Path,
    spec: &PackageSpec<'_>,
    signing_key: Option<&RsaPrivateKey>,
) -> Result<BuiltPackage, PackageError> {
    let mut sources: Vec<(String, PathBuf)> =
        vec![(BINARY_NAME.to_owned(), spec.binary.to_owned())];
    for config in spec.board_configs {
        let name = config.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            PackageError::Manifest(format!("{} has no UTF-8 file name", config.display()))
        })?;
        sources.push((format!("{BOARD_CONFIG_DIR}/{name}"), config.clone()));
    }
    let mut files = Vec::with_capacity(sources.len());
    for (path, source) in &sources {
        let (size, digest) = hash_file::<Sha256>(source)?;
        files.push(ManifestFile {
            path: path.clone(),
            size,
            sha256: hex(&digest),
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        version: spec.version.to_string(),
        target: spec.target.to_owned(),
        binary: BINARY_NAME.to_owned(),
        files,
    };
    manifest.validate()?;
    let manifest_text = manifest.to_toml()?;
    let signature = signing_key
        .map(|key| sign_manifest(key, manifest_text.as_bytes()))
        .transpose()?;

    let tmp = out.with_extension("tmp");
    let write_err = |source| PackageError::Write {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(write_err)?;
    let contents = TarContents {
        manifest: manifest_text.as_bytes(),
        signature: signature.as_deref(),
        sources: &sources,
    };
    let file = match spec.compression {
        Compression::Gzip => {
            let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
            contents.write(gz)?.finish().map_err(write_err)?
        }
        Compression::None => contents.write(file)?,
    };
    file.sync_all().map_err(write_err)?;
    drop(file);
    fs::rename(&tmp, out).map_err(|source| PackageError::Write {
        path: out.to_owned(),
        source,
    })?;
    let (size, md5) = hash_file::<Md5>(out)?;
    Ok(BuiltPackage {
        path: out.to_owned(),
        size,
        md5: hex(&md5),
        manifest,
    })
}

/// The entries of a package, in the order the reader expects.
struct TarContents<'a> {
    manifest: &'a [u8],
    signature: Option<&'a [u8]>,
    /// (path inside the package, source file)
    sources: &'a [(String, PathBuf)],
}

impl TarContents<'_> {
    fn write<W: Write>(&self, writer: W) -> Result<W, PackageError> {
        let write_err = |source| PackageError::Write {
            path: PathBuf::from("<package>"),
            source,
        };
        let mut tar = tar::Builder::new(writer);
        append_bytes(&mut tar, MANIFEST_PATH, self.manifest, 0o644).map_err(write_err)?;
        if let Some(sig) = self.signature {
            append_bytes(&mut tar, SIGNATURE_PATH, sig, 0o644).map_err(write_err)?;
        }
        for (path, source) in self.sources {
            let read_err = |e| PackageError::Read {
                path: source.clone(),
                source: e,
            };
            let mut file = File::open(source).map_err(read_err)?;
            let size = file.metadata().map_err(read_err)?.len();
            let mode = if path == BINARY_NAME { 0o755 } else { 0o644 };
            let mut header = tar_header(size, mode);
            tar.append_data(&mut header, path, &mut file)
                .map_err(write_err)?;
        }
        tar.into_inner().map_err(write_err)
    }
}

fn tar_header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    // A fixed mtime keeps packages reproducible from the same inputs.
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    let size = u64::try_from(bytes.len()).map_err(io::Error::other)?;
    let mut header = tar_header(size, mode);
    tar.append_data(&mut header, path, bytes)
}
