//! The firmware's logger: every record is formatted once and passed
//! through [`crate::protocol::redact::redact`] before the logger behind it
//! sees it, so no log line (ours, or a library's such as ureq's request
//! request lines) carries a RegistryCode, SessionID, token, password or
//! key. ureq's trace records are dropped whole: they hex-dump raw bodies,
//! which no text redaction can read (tests/secrets.rs caught one).

use log::{Log, Metadata, Record};

/// Wraps a logger and redacts every message it is given.
pub struct RedactingLogger<L> {
    inner: L,
}

impl<L: Log> RedactingLogger<L> {
    pub fn new(inner: L) -> Self {
        RedactingLogger { inner }
    }
}

impl<L: Log> Log for RedactingLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !is_raw_dump(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let redacted = crate::protocol::redact::redact(&text);
        self.inner.log(
            &Record::builder()
                .args(format_args!("{redacted}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// HTTP library records that dump bytes of requests and answers.
fn is_raw_dump(metadata: &Metadata<'_>) -> bool {
    metadata.level() == log::Level::Trace && metadata.target().starts_with("ureq")
}

/// Installs `inner` behind the redaction as the process's logger.
pub fn install<L: Log + 'static>(
    inner: L,
    max: log::LevelFilter,
) -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(RedactingLogger::new(inner)))?;
    log::set_max_level(max);
    Ok(())
}
