//! `ACCOUNT transaction` (12.2): the event log packed as `transaction.tgz`
//! (a tar holding `transaction.txt`, one access record per line, gzipped),
//! for the server's account checking.
//!
//! - 12.2.1 (`ContentType=tgz MaxIndex=n`): one base64 package to
//!   `/iclock/querydata?...&datafmt=3&Stamp=9999`; the result carries
//!   `&transaction&StartTime=&EndTime=&RecordSum=N`.
//! - 12.2.2 (`MaxIndex`, `StartIndex`/`EndIndex` or `StartTime`/`EndTime`):
//!   an overview to `/iclock/cdata?...&desc=overview`, then the records as
//!   tgz parts to `/iclock/file?...&fileseq=i`, each part's text no larger
//!   than MaxPackageSize.

use super::data::condition::Condition;
use super::data::query::{plan_packages, OutputPlan};
use super::data::schema::{table, TRANSACTION};
use super::data::value::parse_event_time;
use super::data::{post_checked, DataError};
use super::{codes, CommandContext, CommandExecutor, CommandOutcome};
use crate::protocol::command::{Command, Verb};
use crate::protocol::Record;
use base64::Engine;
use rusqlite::types::Value;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The name of the text file inside every tgz.
pub const TXT_NAME: &str = "transaction.txt";

/// Which records an ACCOUNT command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    AfterIndex(i64),
    IndexRange(i64, i64),
    TimeRange(String, String),
}

/// A parsed ACCOUNT command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRequest {
    /// 12.2.1 (`ContentType=tgz`) rather than 12.2.2.
    pub single_package: bool,
    pub selection: Selection,
}

fn bad(why: &'static str) -> DataError {
    DataError::BadCommand(why)
}

/// Parses `transaction ContentType=tgz MaxIndex=0` and its 12.2.2 forms.
pub fn parse(rest: &str) -> Result<AccountRequest, DataError> {
    let rest = rest.trim_start();
    let (name, args) = match rest.find([' ', '\t']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !name.eq_ignore_ascii_case(TRANSACTION) {
        return Err(DataError::UnknownTable(name.chars().take(40).collect()));
    }
    let record =
        Record::parse(args.trim()).map_err(|source| DataError::Malformed { line: 1, source })?;
    let int = |k: &str| -> Result<Option<i64>, DataError> {
        match record.get(k) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| bad("index is not a number")),
        }
    };
    let time = |k: &str| -> Result<Option<String>, DataError> {
        match record.get(k) {
            None => Ok(None),
            Some(v) => parse_event_time(v.trim())
                .map(Some)
                .map_err(|source| DataError::BadValue {
                    table: TRANSACTION,
                    field: "time",
                    source,
                }),
        }
    };
    for (k, _) in &record.0 {
        let known = [
            "ContentType",
            "MaxIndex",
            "StartIndex",
            "EndIndex",
            "StartTime",
            "EndTime",
        ];
        if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
            return Err(bad("unknown ACCOUNT parameter"));
        }
    }
    let single_package = match record.get("ContentType") {
        None => false,
        Some(t) if t.trim().eq_ignore_ascii_case("tgz") => true,
        Some(_) => return Err(bad("ContentType other than tgz")),
    };
    let selection = if let Some(max) = int("MaxIndex")? {
        Selection::AfterIndex(max)
    } else if let (Some(s), Some(e)) = (int("StartIndex")?, int("EndIndex")?) {
        Selection::IndexRange(s, e)
    } else if let (Some(s), Some(e)) = (time("StartTime")?, time("EndTime")?) {
        Selection::TimeRange(s, e)
    } else if single_package {
        Selection::AfterIndex(0)
    } else {
        return Err(bad(
            "ACCOUNT needs MaxIndex, StartIndex/EndIndex or StartTime/EndTime",
        ));
    };
    Ok(AccountRequest {
        single_package,
        selection,
    })
}

fn conditions(sel: &Selection) -> Vec<Condition> {
    let c = |column, op, value| Condition { column, op, value };
    match sel {
        Selection::AfterIndex(n) => vec![c("idx", ">", Value::Integer(*n))],
        Selection::IndexRange(s, e) => vec![
            c("idx", ">=", Value::Integer(*s)),
            c("idx", "<=", Value::Integer(*e)),
        ],
        Selection::TimeRange(s, e) => vec![
            c("time", ">=", Value::Text(s.clone())),
            c("time", "<=", Value::Text(e.clone())),
        ],
    }
}

/// Packs `len` bytes from `data` as `transaction.txt` in a gzipped tar.
pub fn tgz(data: &mut dyn Read, len: u64, mtime: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_ustar();
    header.set_size(len);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, TXT_NAME, data)?;
    tar.into_inner()?.finish()
}

/// The executor of ACCOUNT.
pub struct AccountExecutor {
    work_dir: PathBuf,
}

impl AccountExecutor {
    /// `work_dir` holds the temporary text of a large 12.2.1 package.
    pub fn new(work_dir: &Path) -> Self {
        AccountExecutor {
            work_dir: work_dir.to_owned(),
        }
    }

    fn run(
        &self,
        command: &Command,
        ctx: &mut CommandContext<'_>,
    ) -> Result<CommandOutcome, DataError> {
        let request = parse(&command.rest)?;
        let table =
            table(TRANSACTION).ok_or_else(|| DataError::UnknownTable(TRANSACTION.into()))?;
        // The access record without its table prefix (12.2.2's example).
        let plan = OutputPlan::new(table, None)?;
        let conds = conditions(&request.selection);
        let sql = plan.select_sql(&conds);
        let mtime = u64::try_from(ctx.clock.now_utc().timestamp()).unwrap_or(0);
        let serial = ctx.link.serial().to_owned();
        let limit = ctx.link.max_package_size().max(1024);
        let link = &mut *ctx.link;
        let tx = ctx.store.conn_mut().transaction()?;
        let params = || rusqlite::params_from_iter(conds.iter().map(|c| &c.value));
        if request.single_package {
            std::fs::create_dir_all(&self.work_dir)?;
            let path = self.work_dir.join(format!("account-{}.txt", command.id));
            let result = (|| -> Result<CommandOutcome, DataError> {
                let mut n = 0usize;
                let mut len = 0u64;
                {
                    let mut out = BufWriter::new(std::fs::File::create(&path)?);
                    let mut stmt = tx.prepare_cached(&sql)?;
                    let mut rows = stmt.query(params())?;
                    while let Some(row) = rows.next()? {
                        let line = plan.format(row)?;
                        out.write_all(line.as_bytes())?;
                        out.write_all(b"\n")?;
                        len += u64::try_from(line.len() + 1).unwrap_or(0);
                        n += 1;
                    }
                    out.flush()?;
                }
                let packed = tgz(&mut std::fs::File::open(&path)?, len, mtime)?;
                let mut body = format!(
                    "name=transaction.tgz\nsize={}\ndatacode=base64\ndatatype=tgz\0",
                    packed.len()
                )
                .into_bytes();
                body.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(&packed)
                        .as_bytes(),
                );
                let pq = format!(
                    "/iclock/querydata?SN={serial}&type=tabledata&cmdid={}&tablename=transaction&count={n}&datafmt=3&Stamp=9999",
                    command.id
                );
                post_checked(link, "/iclock/querydata", &pq, &body, Some(n))?;
                Ok(CommandOutcome {
                    ret: i64::try_from(n).unwrap_or(i64::MAX),
                    extra: format!("&transaction&StartTime=&EndTime=&RecordSum={n}"),
                    follow_up: super::FollowUp::Nothing,
                })
            })();
            let _ = std::fs::remove_file(&path);
            return result;
        }
        // 12.2.2: count and split first, so the overview can say FileCount.
        let parts = {
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut rows = stmt.query(params())?;
            let mut lengths = Vec::new();
            while let Some(row) = rows.next()? {
                lengths.push(plan.format(row)?.len() + 1);
            }
            plan_packages(lengths.into_iter(), limit)
        };
        let total: usize = parts.iter().sum();
        let overview = format!(
            "SumCount={total}\nFileName=transaction.tgz\nContentType=tgz\nFileCount={}",
            parts.len()
        );
        let pq = format!(
            "/iclock/cdata?SN={serial}&cmdid={}&desc=overview",
            command.id
        );
        post_checked(link, "/iclock/cdata", &pq, overview.as_bytes(), None)?;
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params())?;
        for (i, &n) in parts.iter().enumerate() {
            let mut text = String::new();
            for _ in 0..n {
                let Some(row) = rows.next()? else { break };
                text.push_str(&plan.format(row)?);
                text.push('\n');
            }
            let len = u64::try_from(text.len()).unwrap_or(0);
            let packed = tgz(&mut text.as_bytes(), len, mtime)?;
            let pq = format!(
                "/iclock/file?SN={serial}&cmdid={}&fileseq={}&contenttype=tgz&table=transaction&count={n}",
                command.id,
                i + 1
            );
            post_checked(link, "/iclock/file", &pq, &packed, None)?;
            link.keepalive();
        }
        Ok(CommandOutcome::code(
            i64::try_from(total).unwrap_or(i64::MAX),
        ))
    }
}

impl CommandExecutor for AccountExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        matches!(verb, Verb::Account)
    }

    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        self.run(command, ctx).unwrap_or_else(|e| {
            let ret = match &e {
                // A failed package is "failed to upload the data" (Appendix 1).
                DataError::Io(_) => codes::WRITE_FILE_FAILED,
                other => other.code(),
            };
            log::warn!(
                "command {} (ACCOUNT) failed: {e}; answering {ret}",
                command.id
            );
            CommandOutcome::code(ret)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_the_pull_sdk_form() {
        assert_eq!(
            parse("transaction ContentType=tgz MaxIndex=0").unwrap(),
            AccountRequest {
                single_package: true,
                selection: Selection::AfterIndex(0)
            }
        );
        assert_eq!(
            parse("transaction MaxIndex=7").unwrap().selection,
            Selection::AfterIndex(7)
        );
        assert_eq!(
            parse("transaction StartIndex=3\tEndIndex=9")
                .unwrap()
                .selection,
            Selection::IndexRange(3, 9)
        );
        assert_eq!(
            parse("transaction StartTime=2018-02-22 16:19:20\tEndTime=2018-02-23 16:19:20")
                .unwrap()
                .selection,
            Selection::TimeRange("2018-02-22 16:19:20".into(), "2018-02-23 16:19:20".into())
        );
        assert!(matches!(
            parse("user MaxIndex=0"),
            Err(DataError::UnknownTable(_))
        ));
        assert!(parse("transaction").is_err());
        assert!(parse("transaction MaxIndex=x").is_err());
        assert!(parse("transaction Foo=1").is_err());
    }
}
