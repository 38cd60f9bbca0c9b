//! `DATA UPDATE`, `DATA DELETE`, `DATA COUNT` and `DATA QUERY` (12.1) over
//! the tables of [`schema`], and the device's own table uploads (10.5-10.12).
//!
//! Every command applies in one transaction: all its records or none
//! (design invariant 3). Table and field names from the server are only
//! looked up in [`schema::TABLES`]; SQL text is built from that static
//! description and every value is bound (invariant 5).

pub(crate) mod apply;
pub mod bio;
pub(crate) mod condition;
pub(crate) mod lenient;
pub(crate) mod query;
pub mod revocation;
pub mod schema;
pub mod uploads;
pub mod value;

use super::{codes, CommandContext, CommandExecutor, CommandOutcome};
use crate::link::{LinkError, ServerLink};
use crate::protocol::command::{Command, Verb};
use crate::protocol::record::RecordError;
use std::collections::HashMap;
use value::ValueError;

/// Largest command body accepted (Appendix 1, -106: "exceeds 4 MB").
pub const MAX_COMMAND_BYTES: usize = 4 * 1024 * 1024 + 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    #[error("table {table} has no field {field:?}")]
    UnknownField { table: &'static str, field: String },
    #[error("table {table} cannot be selected by field {field}")]
    NotACondition { table: &'static str, field: String },
    #[error("{table}.{field}: {source}")]
    BadValue {
        table: &'static str,
        field: &'static str,
        source: ValueError,
    },
    #[error("record {line}: {source}")]
    Malformed { line: usize, source: RecordError },
    #[error("{table}: field {field} given twice in one record")]
    Duplicate {
        table: &'static str,
        field: &'static str,
    },
    #[error("{table}: key field {field} is missing or empty")]
    MissingKey {
        table: &'static str,
        field: &'static str,
    },
    #[error("{table}: {field}={declared} but the base64 text has {actual} characters")]
    SizeMismatch {
        table: &'static str,
        field: &'static str,
        declared: String,
        actual: usize,
    },
    #[error("malformed command: {0}")]
    BadCommand(&'static str),
    #[error("table {0} is written by the device only")]
    ReadOnly(&'static str),
    #[error("biometric type {0} is not supported by both device and server")]
    BioType(i64),
    #[error("a Type condition is required once the hybrid protocol is negotiated")]
    BioTypeRequired,
    #[error("command of {0} bytes exceeds 4 MB")]
    TooBig(usize),
    #[error("download of {url} failed: {detail}")]
    Download { url: String, detail: String },
    /// A URL off the server's origin (see `session::origin`).
    #[error("{0}")]
    RefusedUrl(String),
    #[error("upload to {endpoint} failed: {detail}")]
    Upload {
        code: i64,
        endpoint: &'static str,
        detail: String,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
}

impl DataError {
    /// The Appendix 1 return code.
    pub fn code(&self) -> i64 {
        match self {
            DataError::UnknownTable(_) => codes::UNKNOWN_TABLE,
            DataError::UnknownField { .. } | DataError::NotACondition { .. } => {
                codes::UNKNOWN_FIELD
            }
            DataError::BadValue { source, .. } => match source {
                ValueError::Base64Length => codes::BAD_BASE64_LENGTH,
                ValueError::TooBig => codes::DATA_TOO_BIG,
                ValueError::Bad(_) => codes::BAD_DATA_FORMAT,
            },
            DataError::Malformed { .. }
            | DataError::Duplicate { .. }
            | DataError::MissingKey { .. } => codes::BAD_DATA_FORMAT,
            DataError::SizeMismatch { .. } => codes::BAD_BASE64_LENGTH,
            DataError::BadCommand(_)
            | DataError::ReadOnly(_)
            | DataError::BioType(_)
            | DataError::BioTypeRequired => codes::BAD_PARAMETER,
            DataError::TooBig(_) => codes::DATA_TOO_BIG,
            DataError::Download { .. } => codes::DOWNLOAD_FAILED,
            DataError::RefusedUrl(_) => codes::BAD_URL,
            DataError::Upload { code, .. } => *code,
            DataError::Sql(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                codes::BAD_DATA_FORMAT
            }
            DataError::Sql(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull =>
            {
                codes::NO_SPACE
            }
            DataError::Sql(_) | DataError::Store(_) => codes::EXECUTION_ERROR,
            DataError::Io(_) => codes::WRITE_FILE_FAILED,
        }
    }

    pub(crate) fn value(table: &'static str, field: &'static str, source: ValueError) -> Self {
        DataError::BadValue {
            table,
            field,
            source,
        }
    }
}

/// Maps a failed request to the Appendix 1 code for it.
pub(crate) fn upload_error(endpoint: &'static str, e: &LinkError) -> DataError {
    let code = match e {
        LinkError::Transport(_) => codes::NO_SERVER_RESPONSE,
        LinkError::Status { .. } => codes::SERVER_HTTP_ERROR,
        LinkError::Refused(_) => codes::BAD_URL,
    };
    DataError::Upload {
        code,
        endpoint,
        detail: e.to_string(),
    }
}

/// Posts a body and checks the server's acknowledgement: `OK` or
/// `<table>=N` with N equal to what was sent (interop.md: any of the forms).
pub(crate) fn post_checked(
    link: &mut dyn ServerLink,
    endpoint: &'static str,
    path_and_query: &str,
    body: &[u8],
    sent: Option<usize>,
) -> Result<(), DataError> {
    use crate::protocol::upload::{classify, UploadAck};
    let reply = link
        .post(path_and_query, body)
        .map_err(|e| upload_error(endpoint, &e))?;
    match classify(&reply.text()) {
        UploadAck::Accepted { count: Some(n) } => match sent {
            Some(s) if u64::try_from(s).ok() != Some(n) => Err(DataError::Upload {
                code: codes::SERVER_RECEIVE_ERROR,
                endpoint,
                detail: format!("server acknowledged {n} of {s} records"),
            }),
            _ => Ok(()),
        },
        UploadAck::Accepted { count: None } => Ok(()),
        UploadAck::Rejected(text) => Err(DataError::Upload {
            code: codes::SERVER_RECEIVE_ERROR,
            endpoint,
            detail: text,
        }),
    }
}

/// UPSERT texts kept before the cache starts over.
const MAX_CACHED_SHAPES: usize = 256;

/// The executor of the four DATA verbs.
#[derive(Default)]
pub struct DataExecutor {
    /// UPSERT statements by table, the set of fields given and the number
    /// of records per statement; the text is built once per shape and
    /// SQLite's statement cache does the rest.
    upsert_sql: HashMap<(&'static str, u128, usize), String>,
    /// Unknown fields already logged (lenient.rs).
    ignored_fields: lenient::IgnoredFields,
}

impl DataExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one DATA command; `Ok` carries the Return value.
    pub fn run(
        &mut self,
        command: &Command,
        ctx: &mut CommandContext<'_>,
    ) -> Result<i64, DataError> {
        if command.rest.len() > MAX_COMMAND_BYTES {
            return Err(DataError::TooBig(command.rest.len()));
        }
        match command.verb {
            Verb::DataUpdate => self.update(command, ctx),
            Verb::DataDelete => apply::delete(command, ctx),
            Verb::DataCount => query::count(command, ctx),
            Verb::DataQuery => query::query(command, ctx),
            _ => Err(DataError::BadCommand("not a DATA command")),
        }
    }

    fn update(
        &mut self,
        command: &Command,
        ctx: &mut CommandContext<'_>,
    ) -> Result<i64, DataError> {
        // A server inventing ever new shapes must not grow this without end.
        if self.upsert_sql.len() > MAX_CACHED_SHAPES {
            self.upsert_sql.clear();
        }
        let (table, body) = command.table_and_body();
        let machine_tz = if table.eq_ignore_ascii_case("DevParameters") {
            super::server_time::machine_tz_in_records(body).map_err(|_| {
                DataError::value(
                    "DevParameters",
                    "Value",
                    ValueError::Bad("MachineTZ is not a zone (+HHMM)"),
                )
            })?
        } else {
            None
        };
        let post_back =
            apply::update(&mut self.upsert_sql, &mut self.ignored_fields, command, ctx)?;
        if let Some(zone) = machine_tz {
            super::server_time::adopt_zone(ctx.store, ctx.clock, zone, "DevParameters MachineTZ")?;
        }
        if post_back {
            // PostBackTmpFlag=1 asks for the template extracted from the
            // photo. This controller stores photos for its readers but
            // extracts nothing, so it says so the way 10.12 provides.
            let entry = uploads::ErrorEntry::from_command(
                "D01E0006",
                "Failed to extract the template",
                &command.id,
                "{\"table\":\"biophoto\",\"PostBackTmpFlag\":1}",
            );
            if let Err(e) =
                uploads::log_error(ctx.store, ctx.link.protocol_version(), ctx.clock, &entry)
            {
                log::warn!("cannot log error {}: {e}", entry.errcode);
            }
        }
        Ok(codes::OK)
    }
}

impl CommandExecutor for DataExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        matches!(
            verb,
            Verb::DataUpdate | Verb::DataDelete | Verb::DataCount | Verb::DataQuery
        )
    }

    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        match self.run(command, ctx) {
            Ok(ret) => CommandOutcome::code(ret),
            Err(e) => {
                let ret = e.code();
                log::warn!(
                    "command {} ({}) failed: {e}; answering {ret}",
                    command.id,
                    command.result_name()
                );
                if matches!(command.verb, Verb::DataUpdate | Verb::DataDelete) {
                    // 10.12: command errors go to the error log (uploaded
                    // when the server speaks 3.1.2 or later).
                    let entry = uploads::ErrorEntry::for_failed_command(&command.id, ret, &e);
                    if let Err(le) = uploads::log_error(
                        ctx.store,
                        ctx.link.protocol_version(),
                        ctx.clock,
                        &entry,
                    ) {
                        log::warn!("cannot log error {}: {le}", entry.errcode);
                    }
                }
                CommandOutcome::code(ret)
            }
        }
    }
}

/// Splits a command body into record lines (LF-separated; CR and blank
/// lines dropped), numbered from 1 for messages.
pub(crate) fn record_lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    body.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}
