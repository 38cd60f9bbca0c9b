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
use crate::session::link::ServerLink;
use std::io::Write;
use std::path::PathBuf;

/// Dropped connections a method-3 download survives before it gives up.
const RANGE_RETRIES: u32 = 5;
/// The unpacked files are assumed no larger than this many times the package.
const UNPACK_FACTOR: u64 = 2;

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

    fn part_path(&self) -> PathBuf {
        self.settings.work_dir.join("emfw.cfg.part")
    }

    fn run(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, Failed> {
        let request = UpgradeRequest::parse(&command.rest)?;
        check_file_name(&request.url)?;
        let work = &self.settings.work_dir;
        std::fs::create_dir_all(work).map_err(|e| {
            Failed(
                super::return_code::WRITE_FAILED.into(),
                format!("{}: {e}", work.display()),
            )
        })?;
        check_space_for_download(
            &*self.settings.free_space,
            work,
            request.size,
            UNPACK_FACTOR,
        )?;
        let part = self.part_path();
        let file = match request.method {
            UpgradeMethod::Ranged => self.download_ranged(&request, ctx.link)?,
            UpgradeMethod::Base64File | UpgradeMethod::RawFile => {
                // A whole-file download never resumes: start clean.
                let mut file = PackageFile::create(&part)?;
                let target = file_request_target(ctx.link.serial(), &request.url);
                if request.method == UpgradeMethod::Base64File {
                    let mut decoder = Base64Decoder::new(file);
                    fetch_whole(ctx.link, &target, &mut decoder)?;
                    decoder.finish()?
                } else {
                    fetch_whole(ctx.link, &target, &mut file)?;
                    file
                }
            }
        };
        let done = work.join(PACKAGE_FILE_NAME);
        let finished = file.finish(request.size, &request.checksum, &done);
        if finished.is_err() {
            // A wrong file must not be resumed next time.
            let _ = std::fs::remove_file(&part);
        }
        let done = finished?;
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
    /// connection (and a restart); at most one buffer of it in memory.
    fn download_ranged(
        &self,
        request: &UpgradeRequest,
        link: &mut dyn ServerLink,
    ) -> Result<PackageFile, Failed> {
        let url = resolve_url(link.base_url(), &request.url)?;
        let part = self.part_path();
        let mut file = PackageFile::resume(&part)?;
        if file.written() > request.size {
            file = PackageFile::create(&part)?;
        }
        let mut plan = RangedDownload::resume(request.size, file.written(), RANGE_CHUNK_BYTES);
        let mut failures = 0;
        while let Some(range) = plan.next_range() {
            let mut sink = Counting {
                inner: &mut file,
                count: 0,
            };
            let result = link.download(&url, &[("Range", range.header_value())], &mut sink);
            let written = sink.count;
            plan.advance(written);
            let outcome = match result {
                Ok(reply) if reply.status == 206 => plan
                    .check_content_range(range, reply.header("Content-Range").unwrap_or(""))
                    .map_err(Failed::from),
                Ok(reply) => Err(Failed(
                    super::return_code::DOWNLOAD_FAILED.into(),
                    format!("range request answered {}", reply.status),
                )),
                Err(e) => Err(Failed(
                    super::return_code::DOWNLOAD_FAILED.into(),
                    e.to_string(),
                )),
            };
            if let Err(Failed(code, why)) = outcome {
                failures += 1;
                if failures > RANGE_RETRIES {
                    return Err(Failed(code, why));
                }
                log::warn!(
                    "upgrade download: {why}; resuming at byte {}",
                    file.written()
                );
                // What arrived is on disk; ask again from there.
                plan = RangedDownload::resume(request.size, file.written(), RANGE_CHUNK_BYTES);
            }
            link.keepalive();
        }
        Ok(file)
    }
}

/// Methods 1 and 2: one GET of `/iclock/file`, streamed to `sink`.
fn fetch_whole(
    link: &mut dyn ServerLink,
    target: &str,
    sink: &mut dyn Write,
) -> Result<(), Failed> {
    let reply = link
        .download(target, &[], sink)
        .map_err(|e| Failed(super::return_code::DOWNLOAD_FAILED.into(), e.to_string()))?;
    if reply.status != 200 {
        return Err(Failed(
            super::return_code::DOWNLOAD_FAILED.into(),
            format!("/iclock/file answered {}", reply.status),
        ));
    }
    Ok(())
}

/// Counts the bytes passed through, so a cut-off range still advances.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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
