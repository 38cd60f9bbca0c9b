//! The pure parts of the UPGRADE command (spec 12.4.1): parsing its parameters,
//! choosing the download method, resolving the URL, planning HTTP Range requests
//! for method 3, decoding method 1's base64 as a stream, and writing the package to
//! disk while counting its length and MD5 so that the size (-20) and checksum (-19)
//! checks need no second pass. The HTTP transport lives in the session.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::package::{hex, PACKAGE_FILE_NAME};
use super::return_code;
use super::space::FreeSpace;

/// Method 3 asks for this many bytes per request ("1M of data each time").
pub const RANGE_CHUNK_BYTES: u64 = 1024 * 1024;

/// Errors of the download stage.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("UPGRADE parameter {0} is missing or invalid")]
    BadParameter(&'static str),
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    #[error("the upgrade file is {0:?}, not {PACKAGE_FILE_NAME}")]
    BadFileName(String),
    #[error("received {actual} bytes, the command announced {expected}")]
    LengthMismatch { expected: u64, actual: u64 },
    #[error("MD5 {actual} does not match the command's checksum {expected}")]
    Checksum { expected: String, actual: String },
    #[error("not enough space in {dir}: need {needed} bytes, {available} available")]
    InsufficientSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("server answered a range request badly: {0}")]
    BadRange(String),
    #[error("base64 data is invalid: {0}")]
    Base64(String),
    #[error("download failed: {0}")]
    Transport(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl DownloadError {
    /// The `Return=` value of Appendix 1.
    pub fn return_code(&self) -> i32 {
        match self {
            DownloadError::BadParameter(_) => return_code::BAD_PARAMETER,
            DownloadError::BadUrl(_) => return_code::BAD_URL,
            DownloadError::BadFileName(_) => return_code::BAD_FILE_NAME,
            DownloadError::LengthMismatch { .. } => return_code::LENGTH_MISMATCH,
            DownloadError::Checksum { .. } => return_code::CHECKSUM,
            DownloadError::InsufficientSpace { .. } => return_code::NO_SPACE,
            DownloadError::BadRange(_) | DownloadError::Transport(_) => {
                return_code::DOWNLOAD_FAILED
            }
            DownloadError::Base64(_) => return_code::BAD_PACKAGE,
            DownloadError::Write { .. } => return_code::WRITE_FAILED,
        }
    }
}

/// The three download methods of 12.4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeMethod {
    /// Method 1: `GET /iclock/file?SN=..&url=..`, the body is the package in base64.
    Base64File,
    /// Method 2 (`type=1`): `GET /iclock/file?SN=..&url=..`, the body is the package.
    RawFile,
    /// Method 3 (`supportsubcontracting=1`): `GET url` in 1 MiB Range requests.
    Ranged,
}

/// The parameters of an UPGRADE command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    pub method: UpgradeMethod,
    /// Lowercase hex MD5 the file must have.
    pub checksum: String,
    /// The URL as the server sent it (absolute or relative).
    pub url: String,
    /// Size of the file (for method 1, of the decoded file).
    pub size: u64,
}

impl UpgradeRequest {
    /// Parse the text after `UPGRADE ` (`checksum=..,url=..,size=..[,type=1]
    /// [,supportsubcontracting=1]`). Keys in any order; unknown keys are ignored
    /// (servers add their own). Only the first `=` splits a pair, and a piece
    /// without `=` is glued back to the previous value, so a URL holding a comma
    /// survives.
    pub fn parse(params: &str) -> Result<Self, DownloadError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in params.trim().split(',') {
            match piece.split_once('=') {
                Some((k, v)) if is_param_key(k.trim()) => {
                    pairs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
                _ => match pairs.last_mut() {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(piece.trim_end());
                    }
                    None => return Err(DownloadError::BadParameter("url")),
                },
            }
        }
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let checksum = get("checksum")
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(DownloadError::BadParameter("checksum"))?;
        let url = get("url")
            .filter(|u| !u.is_empty())
            .ok_or(DownloadError::BadParameter("url"))?
            .to_owned();
        let size = get("size")
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(DownloadError::BadParameter("size"))?;
        let method = if get("supportsubcontracting") == Some("1") {
            UpgradeMethod::Ranged
        } else if let Some(kind) = get("type") {
            // "Currently, only 1 is supported."
            if kind != "1" {
                return Err(DownloadError::BadParameter("type"));
            }
            UpgradeMethod::RawFile
        } else {
            UpgradeMethod::Base64File
        };
        Ok(UpgradeRequest {
            method,
            checksum,
            url,
            size,
        })
    }
}

fn is_param_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The file name the URL points at must be `emfw.cfg` (Return=-25). Compared
/// ASCII-case-insensitively: servers on case-insensitive file systems vary it.
pub fn check_file_name(url: &str) -> Result<(), DownloadError> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if name.eq_ignore_ascii_case(PACKAGE_FILE_NAME) {
        Ok(())
    } else {
        Err(DownloadError::BadFileName(name.to_owned()))
    }
}

/// Resolve the command's URL against the server the device is connected to
/// (`server` such as `http://10.0.0.5:8088` or `https://host/iclock/`). An
/// absolute URL is used as is; a relative one is joined to the server's origin
/// (scheme, host and port), as 12.4.1 method 3 describes.
pub fn resolve_url(server: &str, url: &str) -> Result<String, DownloadError> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(DownloadError::BadUrl(url.to_owned()));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(url.to_owned());
    }
    if lower.contains("://") {
        return Err(DownloadError::BadUrl(url.to_owned()));
    }
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| DownloadError::BadUrl(server.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if authority.is_empty() {
        return Err(DownloadError::BadUrl(server.to_owned()));
    }
    let path = url.trim_start_matches('/');
    Ok(format!("{scheme}://{authority}/{path}"))
}

/// Request target of methods 1 and 2: `/iclock/file?SN=<sn>&url=<url>`. The spec's
/// example sends the URL unencoded; only the characters that would break the query
/// string are percent-encoded, so servers that decode the query get the exact URL.
pub fn file_request_target(serial: &str, url: &str) -> String {
    let mut encoded = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '&' => encoded.push_str("%26"),
            '#' => encoded.push_str("%23"),
            '+' => encoded.push_str("%2B"),
            ' ' => encoded.push_str("%20"),
            other => encoded.push(other),
        }
    }
    format!("/iclock/file?SN={serial}&url={encoded}")
}

/// Refuse a download that cannot fit: the package, plus its unpacked contents
/// (assumed no larger than `unpack_factor` times the package, since it is
/// usually compressed), plus `keep_free` bytes left for the database (events
/// keep being logged while and after the package arrives), must fit into the
/// free space of `dir`.
pub fn check_space_for_download(
    space: &dyn FreeSpace,
    dir: &Path,
    size: u64,
    unpack_factor: u64,
    keep_free: u64,
) -> Result<(), DownloadError> {
    let available = space
        .available_bytes(dir)
        .map_err(|source| DownloadError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let needed = size
        .saturating_add(size.saturating_mul(unpack_factor))
        .saturating_add(keep_free);
    if needed > available {
        return Err(DownloadError::InsufficientSpace {
            dir: dir.to_owned(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The package being downloaded: appends to `<path>` while hashing; resumable.
/// It never grows past the size the command announced: a write beyond it is
/// refused (an error that ends the transfer) and remembered, so that a server
/// answering more than it announced cannot fill the disk the database lives on.
pub struct PackageFile {
    path: PathBuf,
    file: File,
    hasher: Md5,
    written: u64,
    limit: u64,
    overflowed: bool,
}

impl PackageFile {
    /// Start a fresh download of at most `limit` bytes at `path` (truncating
    /// any previous file).
    pub fn create(path: &Path, limit: u64) -> Result<Self, DownloadError> {
        let file = File::create(path).map_err(|source| DownloadError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(PackageFile {
            path: path.to_owned(),
            file,
            hasher: Md5::new(),
            written: 0,
            limit,
            overflowed: false,
        })
    }

    /// Continue a download of at most `limit` bytes: the bytes already at
    /// `path` are hashed again (streamed, 64 KiB at a time) and new bytes are
    /// appended after them. A file already longer than `limit` cannot be part
    /// of this package and is started afresh.
    pub fn resume(path: &Path, limit: u64) -> Result<Self, DownloadError> {
        let write_err = |source| DownloadError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(write_err)?;
        if file.metadata().map_err(write_err)?.len() > limit {
            return Self::create(path, limit);
        }
        let mut hasher = Md5::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(write_err)?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
            written = written.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        }
        Ok(PackageFile {
            path: path.to_owned(),
            file,
            hasher,
            written,
            limit,
            overflowed: false,
        })
    }

    /// Bytes on disk so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether more bytes than the limit were offered (and refused).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length error of a download that offered more than the limit.
    pub fn overflow_error(&self) -> DownloadError {
        DownloadError::LengthMismatch {
            expected: self.limit,
            actual: self.limit.saturating_add(1),
        }
    }

    /// Check length and MD5 against the command, fsync, and rename to `final_path`.
    pub fn finish(
        mut self,
        expected_size: u64,
        expected_md5: &str,
        final_path: &Path,
    ) -> Result<PathBuf, DownloadError> {
        self.file.flush().map_err(|source| DownloadError::Write {
            path: self.path.clone(),
            source,
        })?;
        if self.overflowed {
            return Err(self.overflow_error());
        }
        if self.written != expected_size {
            return Err(DownloadError::LengthMismatch {
                expected: expected_size,
                actual: self.written,
            });
        }
        let actual = hex(&self.hasher.finalize());
        if !actual.eq_ignore_ascii_case(expected_md5) {
            return Err(DownloadError::Checksum {
                expected: expected_md5.to_owned(),
                actual,
            });
        }
        self.file
            .sync_all()
            .map_err(|source| DownloadError::Write {
                path: self.path.clone(),
                source,
            })?;
        if self.path != final_path {
            fs::rename(&self.path, final_path).map_err(|source| DownloadError::Write {
                path: final_path.to_owned(),
                source,
            })?;
        }
        Ok(final_path.to_owned())
    }
}

impl Write for PackageFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let room = self.limit.saturating_sub(self.written);
        if room == 0 {
            self.overflowed = true;
            return Err(io::Error::other(format!(
                "the server sent more than the announced {} bytes",
                self.limit
            )));
        }
        let take = usize::try_from(room).map_or(buf.len(), |room| room.min(buf.len()));
        let n = self.file.write(buf.get(..take).unwrap_or_default())?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.written = self
            .written
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

mod base64_stream;
mod range;

pub use base64_stream::Base64Decoder;
pub use range::{parse_content_range, ByteRange, RangedDownload};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::space::FixedFreeSpace;
    use base64::Engine as _;

    #[test]
    fn parses_the_three_methods() {
        let m1 = UpgradeRequest::parse(
            "checksum=A5BF4DCD6020F408589224274AAB132D,url=http://h:8088/fw/emfw.cfg,size=2312",
        )
        .unwrap();
        assert_eq!(m1.method, UpgradeMethod::Base64File);
        assert_eq!(m1.checksum, "a5bf4dcd6020f408589224274aab132d");
        assert_eq!(m1.size, 2312);
        assert_eq!(m1.url, "http://h:8088/fw/emfw.cfg");

        let m2 = UpgradeRequest::parse(
            "type=1,checksum=a5bf4dcd6020f408589224274aab132d,size=6558,url=http://h/data/emfw.cfg",
        )
        .unwrap();
        assert_eq!(m2.method, UpgradeMethod::RawFile);
        assert_eq!(m2.size, 6558);

        let m3 = UpgradeRequest::parse(
            "checksum=a5bf4dcd6020f408589224274aab132d,size=6558,url=/data/emfw.cfg,supportsubcontracting=1",
        )
        .unwrap();
        assert_eq!(m3.method, UpgradeMethod::Ranged);
        assert_eq!(m3.url, "/data/emfw.cfg");
    }

    #[test]
    fn refuses_bad_parameters() {
        let bad = |p: &str| UpgradeRequest::parse(p).unwrap_err().return_code();
        assert_eq!(bad("url=http://h/emfw.cfg,size=1"), -11);
        assert_eq!(
            bad("checksum=zz,url=http://h/emfw.cfg,size=1"),
            -11,
            "checksum must be 32 hex digits"
        );
        assert_eq!(
            bad("checksum=a5bf4dcd6020f408589224274aab132d,url=http://h/emfw.cfg,size=-1"),
            -11
        );
        assert_eq!(
            bad("type=2,checksum=a5bf4dcd6020f408589224274aab132d,url=http://h/emfw.cfg,size=1"),
            -11
        );
    }

    #[test]
    fn url_with_comma_survives() {
        let r = UpgradeRequest::parse(
            "checksum=a5bf4dcd6020f408589224274aab132d,url=http://h/a,b/emfw.cfg,size=3",
        )
        .unwrap();
        assert_eq!(r.url, "http://h/a,b/emfw.cfg");
        assert_eq!(r.size, 3);
    }

    #[test]
    fn file_name_must_be_emfw_cfg() {
        assert!(check_file_name("http://h/fw/emfw.cfg").is_ok());
        assert!(check_file_name("/fw/EMFW.CFG?x=1").is_ok());
        let err = check_file_name("http://h/fw/firmware.bin").unwrap_err();
        assert_eq!(err.return_code(), -25);
        assert_eq!(
            check_file_name("http://h/emfw.cfg.bak")
                .unwrap_err()
                .return_code(),
            -25
        );
    }

    #[test]
    fn resolves_relative_and_absolute_urls() {
        let server = "http://10.0.0.5:8088/iclock/";
        assert_eq!(
            resolve_url(server, "http://other:89/data/emfw.cfg").unwrap(),
            "http://other:89/data/emfw.cfg"
        );
        assert_eq!(
            resolve_url(server, "/data/emfw.cfg").unwrap(),
            "http://10.0.0.5:8088/data/emfw.cfg"
        );
        assert_eq!(
            resolve_url("https://cloud.example", "data/emfw.cfg").unwrap(),
            "https://cloud.example/data/emfw.cfg"
        );
        assert_eq!(
            resolve_url(server, "ftp://x/emfw.cfg")
                .unwrap_err()
                .return_code(),
            -618
        );
        assert_eq!(
            resolve_url(server, "a b/emfw.cfg")
                .unwrap_err()
                .return_code(),
            -618
        );
    }

    #[test]
    fn file_request_target_escapes_only_query_breakers() {
        assert_eq!(
            file_request_target("3383154200002", "http://h:8088/fw/emfw.cfg"),
            "/iclock/file?SN=3383154200002&url=http://h:8088/fw/emfw.cfg"
        );
        assert_eq!(
            file_request_target("1", "http://h/f?a=1&b=2"),
            "/iclock/file?SN=1&url=http://h/f?a=1%26b=2"
        );
    }

    #[test]
    fn free_space_check_counts_package_and_unpacked_copy() {
        let dir = Path::new("/nonexistent");
        assert!(check_space_for_download(&FixedFreeSpace(3000), dir, 1000, 2, 0).is_ok());
        let err = check_space_for_download(&FixedFreeSpace(2999), dir, 1000, 2, 0).unwrap_err();
        assert_eq!(err.return_code(), -18);
        // The database's reserve counts too.
        assert!(check_space_for_download(&FixedFreeSpace(3500), dir, 1000, 2, 500).is_ok());
        let err = check_space_for_download(&FixedFreeSpace(3499), dir, 1000, 2, 500).unwrap_err();
        assert_eq!(err.return_code(), -18);
    }

    #[test]
    fn range_plan_walks_in_chunks_and_resumes() {
        let mut plan = RangedDownload::resume(2_500_000, 0, RANGE_CHUNK_BYTES);
        let r = plan.next_range().unwrap();
        assert_eq!(r.header_value(), "bytes=0-1048575");
        assert_eq!(r.len(), RANGE_CHUNK_BYTES);
        plan.check_content_range(r, "bytes 0-1048575/2500000")
            .unwrap();
        plan.advance(r.len());
        // Dropped connection: a new plan from what is on disk continues there.
        let resumed = RangedDownload::resume(2_500_000, plan.received(), RANGE_CHUNK_BYTES);
        assert_eq!(resumed.next_range().unwrap().start, 1_048_576);
        let mut plan = RangedDownload::resume(2_500_000, 2_097_152, RANGE_CHUNK_BYTES);
        let last = plan.next_range().unwrap();
        assert_eq!((last.start, last.end), (2_097_152, 2_499_999));
        plan.advance(last.len());
        assert!(plan.is_complete());
        assert_eq!(plan.next_range(), None);
    }

    #[test]
    fn range_answers_are_checked() {
        let plan = RangedDownload::resume(10, 0, 4);
        let r = plan.next_range().unwrap();
        assert!(plan.check_content_range(r, "bytes 0-3/10").is_ok());
        assert!(plan.check_content_range(r, "bytes 0-3/*").is_ok());
        assert_eq!(
            plan.check_content_range(r, "bytes 4-7/10")
                .unwrap_err()
                .return_code(),
            -721
        );
        assert_eq!(
            plan.check_content_range(r, "bytes 0-3/11")
                .unwrap_err()
                .return_code(),
            -20
        );
        assert!(plan.check_content_range(r, "garbage").is_err());
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
    }

    fn md5_hex(data: &[u8]) -> String {
        hex(&Md5::digest(data))
    }

    #[test]
    fn package_file_checks_length_and_md5_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("emfw.cfg.part");
        let done = dir.path().join("emfw.cfg");
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let mut f = PackageFile::create(&part, 200_000).unwrap();
        f.write_all(&data[..70_000]).unwrap();
        drop(f); // connection dropped
        let mut f = PackageFile::resume(&part, 200_000).unwrap();
        assert_eq!(f.written(), 70_000);
        f.write_all(&data[70_000..]).unwrap();
        let path = f.finish(200_000, &md5_hex(&data), &done).unwrap();
        assert_eq!(fs::read(path).unwrap(), data);

        let mut f = PackageFile::create(&part, 200_001).unwrap();
        f.write_all(&data).unwrap();
        let err = f.finish(200_001, &md5_hex(&data), &done).unwrap_err();
        assert_eq!(err.return_code(), -20);

        let mut f = PackageFile::create(&part, 200_000).unwrap();
        f.write_all(&data).unwrap();
        let err = f
            .finish(200_000, "00000000000000000000000000000000", &done)
            .unwrap_err();
        assert_eq!(err.return_code(), -19);
    }

    #[test]
    fn package_file_refuses_bytes_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("emfw.cfg.part");
        let mut f = PackageFile::create(&part, 10).unwrap();
        assert!(f.write_all(&[7u8; 25]).is_err());
        assert!(f.overflowed());
        assert_eq!(f.written(), 10);
        assert_eq!(fs::metadata(&part).unwrap().len(), 10);
        let err = f
            .finish(
                10,
                "00000000000000000000000000000000",
                &dir.path().join("x"),
            )
            .unwrap_err();
        assert_eq!(err.return_code(), -20, "too long, not a checksum error");
        // A partial file longer than the package cannot be resumed.
        fs::write(&part, [1u8; 30]).unwrap();
        let f = PackageFile::resume(&part, 10).unwrap();
        assert_eq!(f.written(), 0);
    }

    #[test]
    fn base64_decoder_handles_any_chunking_and_line_breaks() {
        for len in [0usize, 1, 2, 3, 4, 5, 100, 4097] {
            let data: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 7 % 256).unwrap())
                .collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&data);
            // Insert line breaks every 76 characters like MIME does.
            let wrapped: String = text
                .as_bytes()
                .chunks(76)
                .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
                .collect();
            for step in [1usize, 3, 7, 1000] {
                let mut dec = Base64Decoder::new(Vec::new());
                for piece in wrapped.as_bytes().chunks(step) {
                    dec.write_all(piece).unwrap();
                }
                assert_eq!(dec.finish().unwrap(), data, "len {len} step {step}");
            }
        }
    }

    #[test]
    fn base64_decoder_rejects_garbage() {
        let mut dec = Base64Decoder::new(Vec::new());
        let res = dec.write_all(b"QUJD*EVG");
        assert!(res.is_err() || dec.finish().is_err());
    }
}
