//! DATA COUNT (12.1.3) and DATA QUERY (12.1.4): the answer goes to
//! `/iclock/querydata` before the command's result; QUERY splits its records
//! into packages no larger than the server's MaxPackageSize.

use super::bio::{self, BioSupport};
use super::condition::{clip, lookup_table, parse_conditions, where_clause, CondScope, Condition};
use super::schema::{Out, Table, TRANSACTION};
use super::value::event_time_seconds;
use super::{post_checked, DataError};
use crate::commands::CommandContext;
use crate::protocol::command::Command;
use crate::protocol::Record;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// How a table's rows become record lines: which columns to read and how
/// each output field is made from them.
pub(crate) struct OutputPlan {
    pub table: &'static Table,
    /// The name records and `tablename=` carry: the server's own spelling
    /// of the table (`template10` for templatev10), else the table's name.
    label: String,
    outs: Vec<Out>,
    columns: Vec<&'static str>,
}

impl OutputPlan {
    /// All output fields, or those `fields` names (case-insensitively).
    pub fn new(table: &'static Table, fields: Option<&[&str]>) -> Result<Self, DataError> {
        let all = table.output_fields();
        let outs = match fields {
            None => all,
            Some(names) => {
                let mut picked = Vec::new();
                for name in names {
                    let out = all
                        .iter()
                        .find(|o| out_name(o).eq_ignore_ascii_case(name))
                        .ok_or_else(|| DataError::UnknownField {
                            table: table.name,
                            field: clip(name),
                        })?;
                    picked.push(*out);
                }
                // Keep the record format's order whatever order was asked.
                all.into_iter()
                    .filter(|o| picked.iter().any(|p| out_name(p) == out_name(o)))
                    .collect()
            }
        };
        let mut columns: Vec<&'static str> = Vec::new();
        for out in &outs {
            for col in out_columns(out) {
                if !columns.contains(&col) {
                    columns.push(col);
                }
            }
        }
        if columns.is_empty() {
            columns.push("rowid");
        }
        Ok(OutputPlan {
            table,
            label: table.name.to_owned(),
            outs,
            columns,
        })
    }

    /// Answers under `name`, the spelling the server used, when it names
    /// this table (an alias or another case); otherwise under the table's name.
    pub fn called(mut self, name: &str) -> Self {
        if answer_name(self.table, name) == name {
            self.label = name.to_owned();
        }
        self
    }

    pub fn select_sql(&self, conds: &[Condition]) -> String {
        format!(
            "SELECT {} FROM {}{} ORDER BY rowid",
            self.columns.join(", "),
            self.table.sql,
            where_clause(conds, 1)
        )
    }

    fn col(&self, name: &str) -> usize {
        self.columns.iter().position(|c| *c == name).unwrap_or(0)
    }

    /// One record: `k=v<TAB>k=v`, in the record format's field names.
    pub fn format(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
        let mut out = String::with_capacity(128);
        for (i, o) in self.outs.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(out_name(o));
            out.push('=');
            match *o {
                Out::Col(_, c) => push_value(&mut out, row.get_ref(self.col(c))?),
                Out::Const(_, v) => out.push_str(v),
                Out::Len(_, c) => {
                    let len = match row.get_ref(self.col(c))? {
                        ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                        _ => 0,
                    };
                    out.push_str(&len.to_string());
                }
                Out::FileName(_, c) => {
                    push_value(&mut out, row.get_ref(self.col(c))?);
                    out.push_str(".jpg");
                }
                Out::OldTime(_, c) => {
                    let text: String = row.get(self.col(c))?;
                    out.push_str(&event_time_seconds(&text));
                }
                Out::DuressFinger(_, finger, valid) => {
                    let f: Option<i64> = row.get(self.col(finger))?;
                    let v: Option<i64> = row.get(self.col(valid))?;
                    if let Some(f) = f {
                        let f = if v == Some(3) { f + 16 } else { f };
                        out.push_str(&f.to_string());
                    }
                }
                Out::DuressValid(_, valid) => {
                    let v: Option<i64> = row.get(self.col(valid))?;
                    if let Some(v) = v {
                        out.push_str(&(if v == 3 { 1 } else { v }).to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The record with its table name in front, as QUERY and uploads send it.
    pub fn format_prefixed(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
        Ok(format!("{} {}", self.label, self.format(row)?))
    }
}

fn out_name(o: &Out) -> &'static str {
    match *o {
        Out::Col(n, _)
        | Out::Const(n, _)
        | Out::Len(n, _)
        | Out::FileName(n, _)
        | Out::OldTime(n, _)
        | Out::DuressFinger(n, _, _)
        | Out::DuressValid(n, _) => n,
    }
}

fn out_columns(o: &Out) -> Vec<&'static str> {
    match *o {
        Out::Col(_, c) | Out::Len(_, c) | Out::FileName(_, c) | Out::OldTime(_, c) => vec![c],
        Out::DuressFinger(_, a, b) => vec![a, b],
        Out::DuressValid(_, c) => vec![c],
        Out::Const(..) => Vec::new(),
    }
}

fn push_value(out: &mut String, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => {}
        ValueRef::Integer(i) => out.push_str(&i.to_string()),
        ValueRef::Real(r) => out.push_str(&r.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => out.push_str(&String::from_utf8_lossy(t)),
    }
}

/// Conditions of a COUNT body or QUERY filter, with the biometric scope applied.
fn filter_conditions(
    table: &'static Table,
    text: &str,
    store: &crate::store::Store,
) -> Result<Vec<Condition>, DataError> {
    let text = text.trim();
    let mut conds = if text.is_empty() || text == "*" {
        Vec::new()
    } else {
        // The spec writes the separator as a literal `\t` in QUERY filters.
        let text = text.replace("\\t", "\t");
        let record =
            Record::parse(&text).map_err(|source| DataError::Malformed { line: 1, source })?;
        parse_conditions(table, &record, CondScope::Filter)?
    };
    if let Some(rule) = bio::rule_for(table) {
        BioSupport::load(store)?.scope_filter(rule, &mut conds)?;
    }
    Ok(conds)
}

fn count_rows(conn: &Connection, table: &Table, conds: &[Condition]) -> Result<u64, DataError> {
    let sql = format!(
        "SELECT COUNT(*) FROM {}{}",
        table.sql,
        where_clause(conds, 1)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let n: i64 = stmt.query_row(
        rusqlite::params_from_iter(conds.iter().map(|c| &c.value)),
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The table name an answer carries: `asked` (trimmed) when it names `table`
/// (the server's own spelling, e.g. `template10`), else the table's name.
pub(crate) fn answer_name<'a>(table: &'static Table, asked: &'a str) -> &'a str {
    let asked = asked.trim();
    match crate::commands::data::schema::table(asked) {
        Some(t) if std::ptr::eq(t, table) => asked,
        _ => table.name,
    }
}

/// DATA COUNT: `<table>=<n>` to querydata, then Return=0 (12.1.3.1).
pub(crate) fn count(command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, DataError> {
    let (name, body) = command.table_and_body();
    let table = lookup_table(name)?;
    let conds = filter_conditions(table, body, ctx.store)?;
    let n = count_rows(ctx.store.conn(), table, &conds)?;
    let label = answer_name(table, name);
    let pq = format!(
        "/iclock/querydata?SN={}&type=count&cmdid={}&tablename={label}&count=1&packcnt=1&packidx=1",
        ctx.link.serial(),
        command.id,
    );
    let body = format!("{label}={n}");
    post_checked(ctx.link, "/iclock/querydata", &pq, body.as_bytes(), None)?;
    Ok(crate::commands::codes::OK)
}

/// The three parts of `tablename=..,fielddesc=..,filter=..`.
pub(crate) struct QueryArgs<'a> {
    pub tablename: &'a str,
    pub fielddesc: &'a str,
    pub filter: &'a str,
}

pub(crate) fn parse_query_args(rest: &str) -> Result<QueryArgs<'_>, DataError> {
    let lower = rest.to_ascii_lowercase();
    let keys = ["tablename=", "fielddesc=", "filter="];
    let starts: Vec<Option<usize>> = keys.iter().map(|k| lower.find(k)).collect();
    let value = |i: usize| -> &str {
        let Some(start) = starts[i] else { return "" };
        let from = start + keys[i].len();
        let end = starts
            .iter()
            .flatten()
            .copied()
            .filter(|s| *s > start)
            .min()
            .unwrap_or(rest.len());
        rest.get(from..end)
            .unwrap_or("")
            .trim()
            .trim_end_matches(',')
            .trim()
    };
    if starts[0].is_none() {
        return Err(DataError::BadCommand("DATA QUERY without tablename="));
    }
    Ok(QueryArgs {
        tablename: value(0),
        fielddesc: value(1),
        filter: value(2),
    })
}

/// The first event not yet acknowledged by the server: events are uploaded
/// in index order from the outbox, so everything from the oldest pending
/// rtlog record on is "new" (12.1.4.3, filter=NewRecord).
fn first_unuploaded_event(conn: &Connection) -> Result<Option<i64>, DataError> {
    // Rows up to the acknowledgement watermark were accepted already.
    let acked: i64 = conn
        .query_row(
            "SELECT value FROM options WHERE key = ?1",
            [crate::store::ACKED_THROUGH_KEY],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM outbox WHERE channel = 'rtlog' AND id > ?1 ORDER BY id LIMIT 1",
    )?;
    let mut rows = stmt.query([acked])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let body: String = row.get(0)?;
    Ok(Record::parse(&body)
        .ok()
        .and_then(|r| r.get("index").and_then(|i| i.trim().parse().ok())))
}

/// Record counts per package so that no package body exceeds `limit`
/// bytes (a record larger than that travels alone).
pub(crate) fn plan_packages(lengths: impl Iterator<Item = usize>, limit: usize) -> Vec<usize> {
    let mut packages = Vec::new();
    let (mut n, mut size) = (0usize, 0usize);
    for len in lengths {
        let add = if n == 0 { len } else { len + 1 };
        if n > 0 && size + add > limit {
            packages.push(n);
            n = 0;
            size = 0;
        }
        size += if n == 0 { len } else { len + 1 };
        n += 1;
    }
    if n > 0 {
        packages.push(n);
    }
    packages
}

/// DATA QUERY: records to querydata in packages; Return = records sent.
pub(crate) fn query(command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, DataError> {
    let args = parse_query_args(&command.rest)?;
    let table = lookup_table(args.tablename)?;
    let fields: Option<Vec<&str>> = match args.fielddesc {
        "" | "*" => None,
        list => Some(
            list.split(['\t', ' '])
                .flat_map(|s| s.split("\\t"))
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let plan = OutputPlan::new(table, fields.as_deref())?.called(args.tablename.trim());
    let new_records = args.filter.eq_ignore_ascii_case("NewRecord");
    let conds = if new_records {
        if table.name != TRANSACTION {
            return Err(DataError::BadCommand(
                "filter=NewRecord applies to transaction only",
            ));
        }
        match first_unuploaded_event(ctx.store.conn())? {
            Some(first) => vec![Condition {
                column: "idx",
                op: ">=",
                value: rusqlite::types::Value::Integer(first),
            }],
            None => return Ok(0),
        }
    } else {
        filter_conditions(table, args.filter, ctx.store)?
    };
    let limit = ctx.link.max_package_size().max(1024);
    let serial = ctx.link.serial().to_owned();
    let link = &mut *ctx.link;
    // One read transaction: both passes see the same rows even while the
    // engine logs events through its own connection.
    let tx = ctx.store.conn_mut().transaction()?;
    let sql = plan.select_sql(&conds);
    let params = || rusqlite::params_from_iter(conds.iter().map(|c| &c.value));
    let packages = {
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params())?;
        let mut lengths = Vec::new();
        while let Some(row) = rows.next()? {
            lengths.push(plan.format_prefixed(row)?.len());
        }
        plan_packages(lengths.into_iter(), limit)
    };
    let total: usize = packages.iter().sum();
    if total == 0 {
        return Ok(0);
    }
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params())?;
    for (idx, &n) in packages.iter().enumerate() {
        let mut body = String::new();
        for i in 0..n {
            let Some(row) = rows.next()? else { break };
            if i > 0 {
                body.push('\n');
            }
            body.push_str(&plan.format_prefixed(row)?);
        }
        let pq = format!(
            "/iclock/querydata?SN={serial}&type=tabledata&cmdid={}&tablename={}&count={n}&packcnt={}&packidx={}",
            command.id,
            plan.label,
            packages.len(),
            idx + 1
        );
        post_checked(link, "/iclock/querydata", &pq, body.as_bytes(), Some(n))?;
        link.keepalive();
    }
    // NewRecord: what was sent is uploaded now (12.1.4.3), so the rtlog
    // upload must not send it again. The snapshot's newest event is the
    // last one sent.
    let last_sent: Option<i64> = if new_records {
        tx.query_row("SELECT MAX(idx) FROM event_log", [], |r| r.get(0))?
    } else {
        None
    };
    drop(rows);
    drop(stmt);
    drop(tx);
    if let Some(last) = last_sent {
        let n = ctx.store.outbox_drop_rtlog_through(last)?;
        log::info!("DATA QUERY NewRecord: events through {last} sent; {n} left the rtlog upload");
    }
    Ok(i64::try_from(total).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_respect_the_limit() {
        assert_eq!(plan_packages([10, 10, 10].into_iter(), 21), vec![2, 1]);
        assert_eq!(plan_packages([50, 5].into_iter(), 20), vec![1, 1]);
        assert_eq!(plan_packages(std::iter::empty(), 20), Vec::<usize>::new());
        assert_eq!(plan_packages([5, 5, 5, 5].into_iter(), 100), vec![4]);
    }

    #[test]
    fn query_arguments() {
        let a =
            parse_query_args("tablename=biodata,fielddesc=*,filter=Type=1\\tPin=1\\tNo=6").unwrap();
        assert_eq!(
            (a.tablename, a.fielddesc, a.filter),
            ("biodata", "*", "Type=1\\tPin=1\\tNo=6")
        );
        let a = parse_query_args("TableName=user, FieldDesc=*, Filter=*").unwrap();
        assert_eq!((a.tablename, a.fielddesc, a.filter), ("user", "*", "*"));
        assert!(parse_query_args("fielddesc=*").is_err());
    }
}
