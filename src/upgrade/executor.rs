//! The UPGRADE command (12.4.1) on top of the session's link: download by
//! the method the server chose, check, unpack, install into the inactive
//! slot, switch, and ask for a restart once the result is reported.

use super::download::{
    check_file_name, check_space_for_download, file_request_target, resolve_url, Base64Decoder,
    DownloadError, PackageFile, RangedDownload, UpgradeMethod, UpgradeRequest, RANGE_CHUNK_BYTES,
};
use super::package::{verify_and_unpack, InstallPolicy, PACKAGE_FILE_NAME};
use super::slots::{Slots, TrialPolicy};
use super::space::FreeSpace;
use crate::commands::{CommandContext, CommandExecutor, CommandOutcome};
use crate::protocol::command::{Command, Verb};
use crate::session::link::{LinkError, ServerLink};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Dropped connections a method-3 download survives before it gives up.
const RANGE_RETRIES: u32 = 5;
/// The unpacked files are assumed no larger than this many times the package.
const UNPACK_FACTOR: u64 = 2;
/// Suffix of a download in progress: `emfw.cfg.<md5>.part`.
const PART_SUFFIX: &str = ".part";

/// Where and how upgrades are installed.
pub struct UpgradeSettings {
    /// Download and staging area.
    pub work_dir: PathBuf,
    pub slots: Slots,
    pub policy: InstallPolicy,
    pub trial: TrialPolicy,
    pub free_space: Box<dyn FreeSpace + Send>,
}

pub struct UpgradeExecutor {
    settings: UpgradeSettings,
}

/// A failure with its Appendix 1 code.
struct Failed(i64, String);

impl From<DownloadError> for Failed {
    fn from(e: DownloadError) -> Self {
        Failed(i64::from(e.return_code()), e.to_string())
    }
}

impl UpgradeExecutor {
    pub fn new(settings: UpgradeSettings) -> Self {
        UpgradeExecutor { settings }
    }

    /// The partial download of the package with this checksum. Naming it by
    /// the checksum means a method-3 download resumes only the same package.
    fn part_path(&self, checksum: &str) -> PathBuf {
        self.settings
            .work_dir
            .join(format!("{PACKAGE_FILE_NAME}.{checksum}{PART_SUFFIX}"))
    }

    /// Removes everything an upgrade may leave in the work directory except
    /// `keep`: partial downloads of other packages (a power cut mid-download),
    /// a downloaded package, a staging directory.
    fn clear_work_dir(&self, keep: Option<&Path>) {
        let Ok(entries) = std::fs::read_dir(&self.settings.work_dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if Some(path.as_path()) == keep {
                continue;
            }
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }

    fn run(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, Failed> {
        let request = UpgradeRequest::parse(&command.rest)?;
        check_file_name(&request.url)?;
        if let Some(why) = self.settings.policy.refuses_every_package() {
            // Nothing downloaded can pass: spare the network and the disk.
            return Err(Failed(super::return_code::BAD_PACKAGE.into(), why.into()));
        }
        let work = &self.settings.work_dir;
        std::fs::create_dir_all(work).map_err(|e| {
            Failed(
                super::return_code::WRITE_FAILED.into(),
                format!("{}: {e}", work.display()),
            )
        })?;
        let part = self.part_path(&request.checksum);
        // Only a method-3 download of this very package is worth resuming.
        let resumable = (request.method == UpgradeMethod::Ranged).then_some(part.as_path());
        self.clear_work_dir(resumable);
        let result = self.download_and_install(&request, &part, ctx);
        if result.is_err() {
            // Every failure path: nothing partial stays behind to take the
            // space the database needs (a dropped range is retried within
            // this command; a power cut is the only way a part survives).
            self.clear_work_dir(None);
        }
        result
    }

    fn download_and_install(
        &mut self,
        request: &UpgradeRequest,
        part: &Path,
        ctx: &mut CommandContext<'_>,
    ) -> Result<i64, Failed> {
        let work = &self.settings.work_dir;
        let keep_free = self.settings.policy.limits.keep_free_bytes;
        check_space_for_download(
            &*self.settings.free_space,
            work,
            request.size,
            UNPACK_FACTOR,
            keep_free,
        )?;
        let file = match request.method {
            UpgradeMethod::Ranged => self.download_ranged(request, part, ctx.link)?,
            UpgradeMethod::Base64File | UpgradeMethod::RawFile => {
                let mut file = PackageFile::create(part, request.size)?;
                let target = file_request_target(ctx.link.serial(), &request.url);
                if request.method == UpgradeMethod::Base64File {
                    let mut decoder = Base64Decoder::new(file);
                    let fetched =
                        fetch_whole(ctx.link, &target, base64_bound(request.size), &mut decoder);
                    if decoder.get_ref().overflowed() {
                        return Err(decoder.get_ref().overflow_error().into());
                    }
                    fetched?;
                    decoder.finish()?
                } else {
                    let fetched = fetch_whole(ctx.link, &target, request.size, &mut file);
                    if file.overflowed() {
                        return Err(file.overflow_error().into());
                    }
                    fetched?;
                    file
                }
            }
        };
        let done = work.join(PACKAGE_FILE_NAME);
        let done = file.finish(request.size, &request.checksum, &done)?;
        let staging = work.join("staging");
        let verified = verify_and_unpack(
            &done,
            &staging,
            &self.settings.policy,
            &*self.settings.free_space,
        )
        .map_err(|e| Failed(i64::from(e.return_code()), e.to_string()));
        let _ = std::fs::remove_file(&done);
        let verified = verified?;
        let slots = &self.settings.slots;
        let slot_err =
            |e: super::slots::SlotError| Failed(i64::from(e.return_code()), e.to_string());
        slots.ensure_layout().map_err(slot_err)?;
        // The slot copy may land on the database's file system too.
        check_space_for_download(
            &*self.settings.free_space,
            slots.root(),
            verified.manifest.total_size(),
            0,
            keep_free,
        )?;
        let slot = slots
            .install_to_inactive(&verified.staging)
            .map_err(slot_err)?;
        let now = u64::try_from(ctx.clock.now_utc().timestamp()).unwrap_or(0);
        slots.activate(self.settings.trial, now).map_err(slot_err)?;
        let _ = std::fs::remove_dir_all(&staging);
        log::info!(
            "firmware {} installed into slot {slot:?} and activated; restarting once the result is reported",
            verified.version
        );
        Ok(0)
    }

    /// Method 3: 1 MiB ranges appended to a file that survives a dropped
    /// connection (and a restart). Each range is held in memory until its
    /// answer proved to be that range (206 and the matching Content-Range):
    /// an error page or a body longer than asked never reaches the package.
    fn download_ranged(
        &self,
        request: &UpgradeRequest,
        part: &Path,
        link: &mut dyn ServerLink,
    ) -> Result<PackageFile, Failed> {
        let url = resolve_url(link.base_url(), &request.url)?;
        let mut file = PackageFile::resume(part, request.size)?;
        let mut plan = RangedDownload::resume(request.size, file.written(), RANGE_CHUNK_BYTES);
        let mut failures = 0;
        let mut piece = RangeBuffer::default();
        while let Some(range) = plan.next_range() {
            piece.expect(range.len());
            let result = link.download(
                &url,
                &[("Range", range.header_value())],
                range.len(),
                &mut piece,
            );
            let outcome = match result {
                _ if piece.overflowed => Err(Failed(
                    super::return_code::LENGTH_MISMATCH.into(),
                    format!("more than the {} bytes asked for", range.len()),
                )),
                Ok(reply) if reply.status == 206 => plan
                    .check_content_range(range, reply.header("Content-Range").unwrap_or(""))
                    .map_err(Failed::from)
                    .and_then(|()| piece.complete(range.len())),
                Ok(reply) => Err(Failed(
                    super::return_code::DOWNLOAD_FAILED.into(),
                    format!("range request answered {}", reply.status),
                )),
                // Off the server's origin: asking again changes nothing.
                Err(LinkError::Refused(e)) => {
                    return Err(Failed(super::return_code::BAD_URL.into(), e.to_string()))
                }
                Err(e) => Err(Failed(
                    super::return_code::DOWNLOAD_FAILED.into(),
                    e.to_string(),
                )),
            };
            match outcome {
                Ok(()) => {
                    file.write_all(&piece.bytes).map_err(|source| {
                        Failed::from(DownloadError::Write {
                            path: part.to_owned(),
                            source,
                        })
                    })?;
                    plan.advance(range.len());
                }
                Err(Failed(code, why)) => {
                    failures += 1;
                    if failures > RANGE_RETRIES {
                        return Err(Failed(code, why));
                    }
                    log::warn!(
                        "upgrade download: {why}; asking again from byte {}",
                        file.written()
                    );
                }
            }
            link.keepalive();
        }
        Ok(file)
    }
}

/// The most base64 text a package of `size` bytes takes: 4 characters per
/// 3 bytes, line breaks (at least every 64 characters, CRLF) and slack.
fn base64_bound(size: u64) -> u64 {
    let text = size.div_ceil(3).saturating_mul(4);
    text.saturating_add(text / 32).saturating_add(4096)
}

/// Methods 1 and 2: one GET of `/iclock/file`, streamed to `sink`, at most
/// `max_bytes` of it.
fn fetch_whole(
    link: &mut dyn ServerLink,
    target: &str,
    max_bytes: u64,
    sink: &mut dyn Write,
) -> Result<(), Failed> {
    let reply = link
        .download(target, &[], max_bytes, sink)
        .map_err(|e| match e {
            // The link stopped the transfer at the announced size.
            LinkError::Transport(crate::session::transport::TransportError::TooLarge {
                ..
            }) => Failed(
                super::return_code::LENGTH_MISMATCH.into(),
                format!("more than the {max_bytes} bytes announced"),
            ),
            LinkError::Refused(e) => Failed(super::return_code::BAD_URL.into(), e.to_string()),
            e => Failed(super::return_code::DOWNLOAD_FAILED.into(), e.to_string()),
        })?;
    if reply.status != 200 {
        return Err(Failed(
            super::return_code::DOWNLOAD_FAILED.into(),
            format!("/iclock/file answered {}", reply.status),
        ));
    }
    Ok(())
}

/// One method-3 range in memory (at most [`RANGE_CHUNK_BYTES`]): bytes past
/// the length asked for are refused, which ends the transfer.
#[derive(Default)]
struct RangeBuffer {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl RangeBuffer {
    fn expect(&mut self, len: u64) {
        self.bytes.clear();
        self.limit = usize::try_from(len).unwrap_or(usize::MAX);
        self.overflowed = false;
    }

    /// A cut-off range is asked for again whole: nothing of it is kept.
    fn complete(&self, len: u64) -> Result<(), Failed> {
        if u64::try_from(self.bytes.len()).ok() == Some(len) {
            Ok(())
        } else {
            Err(Failed(
                super::return_code::DOWNLOAD_FAILED.into(),
                format!("range cut off after {} of {len} bytes", self.bytes.len()),
            ))
        }
    }
}

impl Write for RangeBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("more bytes than the range asked for"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CommandExecutor for UpgradeExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        *verb == Verb::Upgrade
    }

    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        match self.run(command, ctx) {
            Ok(ret) => CommandOutcome::then_restart(ret),
            Err(Failed(code, why)) => {
                log::warn!("UPGRADE {} refused: {why} (Return={code})", command.id);
                CommandOutcome::code(code)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::commands::CommandExecutor;
    use crate::platform::RecordingPlatform;
    use crate::protocol::command::CommandLine;
    use crate::protocol::ProtocolVersion;
    use crate::session::link::LinkError;
    use crate::session::transport::{HttpReply, TransportError};
    use crate::store::Store;
    use crate::upgrade::package::InstallPolicy;
    use crate::upgrade::space::FixedFreeSpace;
    use std::path::Path;

    /// A server that answers every download with `body` (or, for a Range
    /// request, `body` under a 206 naming the range asked for), streamed in
    /// 64 KiB pieces the way the real transport does, stopping at the first
    /// refused write. It notes the most bytes the work directory ever held.
    struct FloodLink {
        work_dir: PathBuf,
        body: Vec<u8>,
        total: u64,
        most_on_disk: u64,
    }

    fn bytes_in(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    impl ServerLink for FloodLink {
        fn serial(&self) -> &str {
            "SN1"
        }
        fn get(&mut self, _: &str) -> Result<HttpReply, LinkError> {
            unreachable!("UPGRADE only downloads")
        }
        fn post(&mut self, _: &str, _: &[u8]) -> Result<HttpReply, LinkError> {
            unreachable!("UPGRADE only downloads")
        }
        fn download(
            &mut self,
            _url: &str,
            headers: &[(&str, String)],
            _max_bytes: u64,
            sink: &mut dyn Write,
        ) -> Result<HttpReply, LinkError> {
            for piece in self.body.chunks(64 * 1024) {
                let wrote = sink.write_all(piece);
                self.most_on_disk = self.most_on_disk.max(bytes_in(&self.work_dir));
                wrote.map_err(|e| LinkError::Transport(TransportError::Sink(e)))?;
            }
            let range = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Range"))
                .and_then(|(_, v)| v.strip_prefix("bytes="));
            Ok(match range {
                Some(r) => HttpReply {
                    status: 206,
                    headers: vec![("Content-Range".into(), format!("bytes {r}/{}", self.total))],
                    body: Vec::new(),
                },
                None => HttpReply {
                    status: 200,
                    ..HttpReply::default()
                },
            })
        }
        fn keepalive(&mut self) {}
        fn max_package_size(&self) -> usize {
            1 << 20
        }
        fn protocol_version(&self) -> ProtocolVersion {
            crate::protocol::DEVICE_PUSH_VERSION
        }
        fn base_url(&self) -> &str {
            "http://server.test"
        }
    }

    fn executor(dir: &Path) -> UpgradeExecutor {
        UpgradeExecutor::new(UpgradeSettings {
            work_dir: dir.join("upgrade"),
            slots: Slots::new(dir.join("opt")),
            policy: InstallPolicy {
                public_key: Some(
                    crate::upgrade::package::parse_public_key_pem(include_str!(
                        "testdata/signing_key.pub.pem"
                    ))
                    .unwrap(),
                ),
                ..InstallPolicy::for_running_firmware()
            },
            trial: TrialPolicy::default(),
            free_space: Box::new(FixedFreeSpace(u64::MAX)),
        })
    }

    fn run(exec: &mut UpgradeExecutor, link: &mut dyn ServerLink, dir: &Path, text: &str) -> i64 {
        let mut store = Store::open(&dir.join("data")).unwrap();
        let clock = ManualClock::new(chrono::Utc::now());
        let platform = RecordingPlatform::new();
        let mut ctx = CommandContext {
            store: &mut store,
            link,
            clock: &clock,
            platform: &platform,
        };
        let command = Command::classify(&CommandLine {
            id: "1".into(),
            text: text.into(),
        });
        exec.execute(&command, &mut ctx).ret
    }

    #[test]
    fn an_answer_far_longer_than_announced_never_writes_past_the_size() {
        const SIZE: u64 = 100_000;
        let checksum = "0123456789abcdef0123456789abcdef";
        let methods = [
            format!("type=1,checksum={checksum},size={SIZE},url=/f/emfw.cfg"),
            format!("checksum={checksum},size={SIZE},url=/f/emfw.cfg"),
            format!("checksum={checksum},size={SIZE},url=/f/emfw.cfg,supportsubcontracting=1"),
        ];
        for params in methods {
            let dir = tempfile::tempdir().unwrap();
            let work_dir = dir.path().join("upgrade");
            // 40 times the announced size; base64 text for method 1.
            let body = if params.starts_with("checksum") && !params.contains("subcontracting") {
                vec![b'A'; 40 * 100_000]
            } else {
                vec![0x5a; 40 * 100_000]
            };
            let mut link = FloodLink {
                work_dir: work_dir.clone(),
                body,
                total: SIZE,
                most_on_disk: 0,
            };
            let mut exec = executor(dir.path());
            let ret = run(
                &mut exec,
                &mut link,
                dir.path(),
                &format!("UPGRADE {params}"),
            );
            assert!(
                link.most_on_disk <= SIZE,
                "{params}: {} bytes on disk",
                link.most_on_disk
            );
            assert_eq!(ret, -20, "{params}: the length is wrong");
            assert_eq!(bytes_in(&work_dir), 0, "{params}: no partial file is left");
        }
    }
}
