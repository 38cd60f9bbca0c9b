//! DATA UPDATE (insert or replace by key) and DATA DELETE (AND of
//! conditions), each command in one transaction.

use super::bio::{self, BioSupport};
use super::schema::{self, Field, Table};
use super::value::{self, Normalized};
use super::{record_lines, DataError};
use crate::commands::CommandContext;
use crate::protocol::command::Command;
use crate::protocol::record::parse_fields;
use crate::protocol::Record;
use base64::Engine;
use rusqlite::types::Value;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One record ready to write: normalised values by field index.
pub(crate) struct Row {
    /// `(field index, value)` in field order.
    values: Vec<(usize, Normalized)>,
    mask: u128,
}

impl Row {
    fn get(&self, idx: usize) -> Option<&Value> {
        self.values
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|(_, n)| &n.value)
    }

    fn set(&mut self, idx: usize, value: Value) {
        match self.values.iter_mut().find(|(i, _)| *i == idx) {
            Some((_, n)) => n.value = value,
            None => {
                self.values.push((
                    idx,
                    Normalized {
                        value,
                        derived: None,
                    },
                ));
                self.values.sort_by_key(|(i, _)| *i);
                self.mask |= 1u128 << idx;
            }
        }
    }
}

pub(crate) fn lookup_table(name: &str) -> Result<&'static Table, DataError> {
    schema::table(name).ok_or_else(|| DataError::UnknownTable(clip(name)))
}

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn field_of(table: &'static Table, name: &str) -> Result<(usize, &'static Field), DataError> {
    table.field(name).ok_or_else(|| DataError::UnknownField {
        table: table.name,
        field: clip(name),
    })
}

/// Parses and checks one UPDATE record.
fn parse_row(table: &'static Table, line_no: usize, line: &str) -> Result<Row, DataError> {
    let fields = parse_fields(line).map_err(|source| DataError::Malformed {
        line: line_no,
        source,
    })?;
    let mut row = Row {
        values: Vec::with_capacity(fields.len()),
        mask: 0,
    };
    for &(name, raw) in &fields {
        let (idx, field) = field_of(table, name)?;
        let bit = 1u128 << idx;
        if row.mask & bit != 0 {
            return Err(DataError::Duplicate {
                table: table.name,
                field: field.name,
            });
        }
        let n = value::normalize(field, raw)
            .map_err(|e| DataError::value(table.name, field.name, e))?;
        // An empty key value means "the default", not a NULL key.
        if table.is_key(field) && is_empty(&n.value) {
            if table.required.contains(&field.name) {
                return Err(DataError::MissingKey {
                    table: table.name,
                    field: field.name,
                });
            }
            continue;
        }
        row.mask |= bit;
        row.values.push((idx, n));
    }
    row.values.sort_by_key(|(i, _)| *i);
    for req in table.required {
        let present = table
            .field(req)
            .is_some_and(|(idx, _)| row.mask & (1u128 << idx) != 0);
        if !present {
            return Err(DataError::MissingKey {
                table: table.name,
                field: req,
            });
        }
    }
    Ok(row)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Text(t) => t.is_empty(),
        _ => false,
    }
}

/// 12.1.1.30/31: `Format=1` means the photo is at `Url` on the server.
fn fetch_by_url(
    table: &'static Table,
    row: &mut Row,
    ctx: &mut CommandContext<'_>,
) -> Result<(), DataError> {
    let Some(fetch) = table.url_fetch else {
        return Ok(());
    };
    let (Some((fmt_idx, _)), Some((url_idx, _)), Some((content_idx, _)), Some((size_idx, _))) = (
        table.field(fetch.format),
        table.field(fetch.url),
        table.field(fetch.content),
        table.field(fetch.size),
    ) else {
        return Ok(());
    };
    if row.get(fmt_idx) != Some(&Value::Integer(1)) {
        return Ok(());
    }
    let url = match row.get(url_idx) {
        Some(Value::Text(u)) if !u.trim().is_empty() => u.trim().to_owned(),
        _ => {
            return Err(DataError::MissingKey {
                table: table.name,
                field: fetch.url,
            })
        }
    };
    let mut sink = LimitedSink::new(value::MAX_BASE64 / 4 * 3);
    let reply = ctx
        .link
        .download(&url, &[], &mut sink)
        .map_err(|e| DataError::Download {
            url: clip(&url),
            detail: e.to_string(),
        })?;
    if !reply.is_success() || sink.overflow {
        return Err(DataError::Download {
            url: clip(&url),
            detail: if sink.overflow {
                "file larger than 3 MB".into()
            } else {
                format!("HTTP {}", reply.status)
            },
        });
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&sink.data);
    let len = i64::try_from(b64.len()).unwrap_or(i64::MAX);
    row.set(content_idx, Value::Text(b64));
    row.set(size_idx, Value::Integer(len));
    Ok(())
}

/// A download sink that stops growing past a limit.
struct LimitedSink {
    data: Vec<u8>,
    limit: usize,
    overflow: bool,
}

impl LimitedSink {
    fn new(limit: usize) -> Self {
        LimitedSink {
            data: Vec::new(),
            limit,
            overflow: false,
        }
    }
}

impl std::io::Write for LimitedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.len() + buf.len() > self.limit {
            self.overflow = true;
            return Err(std::io::Error::other("download too large"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `Size`/`size` must be the length of the base64 content when both are given.
fn check_size(table: &'static Table, row: &Row) -> Result<(), DataError> {
    let Some((size_name, content_name)) = table.size_check else {
        return Ok(());
    };
    let (Some((size_idx, size_field)), Some((content_idx, _))) =
        (table.field(size_name), table.field(content_name))
    else {
        return Ok(());
    };
    if let (Some(Value::Integer(size)), Some(Value::Text(content))) =
        (row.get(size_idx), row.get(content_idx))
    {
        if !content.is_empty() && usize::try_from(*size).ok() != Some(content.len()) {
            return Err(DataError::SizeMismatch {
                table: table.name,
                field: size_field.name,
                declared: size.to_string(),
                actual: content.len(),
            });
        }
    }
    Ok(())
}

/// The UPSERT for one shape of record, from the static description only.
fn upsert_sql(table: &'static Table, row: &Row) -> String {
    let mut cols = String::new();
    let mut sets = String::new();
    let mut n = 0usize;
    let mut push_col = |col: &str, is_key: bool, cols: &mut String, sets: &mut String| {
        if n > 0 {
            cols.push_str(", ");
        }
        n += 1;
        cols.push_str(col);
        if !is_key {
            if !sets.is_empty() {
                sets.push_str(", ");
            }
            let _ = write!(sets, "{col} = excluded.{col}");
        }
    };
    for (idx, norm) in &row.values {
        let field = &table.fields[*idx];
        push_col(field.column, table.is_key(field), &mut cols, &mut sets);
        if let Some((derived, _)) = &norm.derived {
            push_col(derived, false, &mut cols, &mut sets);
        }
    }
    let placeholders = (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let keys = table
        .key
        .iter()
        .filter_map(|k| table.field(k).map(|(_, f)| f.column))
        .collect::<Vec<_>>()
        .join(", ");
    let action = if sets.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {sets}")
    };
    format!(
        "INSERT INTO {}({cols}) VALUES ({placeholders}) ON CONFLICT({keys}) {action}",
        table.sql
    )
}

fn row_params(row: &Row) -> Vec<&Value> {
    let mut out = Vec::with_capacity(row.values.len() + 1);
    for (_, n) in &row.values {
        out.push(&n.value);
        if let Some((_, v)) = &n.derived {
            out.push(v);
        }
    }
    out
}

/// Applies a DATA UPDATE. Returns whether a record asked for a template
/// post-back (PostBackTmpFlag=1).
pub(crate) fn update(
    sql_cache: &mut HashMap<(&'static str, u128), String>,
    command: &Command,
    ctx: &mut CommandContext<'_>,
) -> Result<bool, DataError> {
    let (name, body) = command.table_and_body();
    let table = lookup_table(name)?;
    if !table.writable {
        return Err(DataError::ReadOnly(table.name));
    }
    let bio_rule = bio::rule_for(table);
    let support = match bio_rule {
        Some(_) => Some(BioSupport::load(ctx.store)?),
        None => None,
    };
    let mut rows = Vec::new();
    for (line_no, line) in record_lines(body) {
        let mut row = parse_row(table, line_no, line)?;
        fetch_by_url(table, &mut row, ctx)?;
        check_size(table, &row)?;
        if let (Some(rule), Some(support)) = (bio_rule, &support) {
            let ty = table
                .field("type")
                .and_then(|(idx, _)| row.get(idx))
                .and_then(|v| match v {
                    Value::Integer(i) => Some(*i),
                    _ => None,
                })
                .unwrap_or(bio::VISIBLE_LIGHT_FACE);
            support.check_update(rule, ty)?;
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DataError::BadCommand("DATA UPDATE without records"));
    }
    let post_back = table
        .field("PostBackTmpFlag")
        .is_some_and(|(idx, _)| rows.iter().any(|r| r.get(idx) == Some(&Value::Integer(1))));
    let tx = ctx.store.conn_mut().transaction()?;
    {
        // Records of one command nearly always share one shape: the statement
        // is looked up once per run of equal shapes, not once per record.
        let mut current: Option<(u128, rusqlite::CachedStatement<'_>)> = None;
        for row in &rows {
            if current.as_ref().is_none_or(|(mask, _)| *mask != row.mask) {
                let sql = sql_cache
                    .entry((table.name, row.mask))
                    .or_insert_with(|| upsert_sql(table, row));
                current = Some((row.mask, tx.prepare_cached(sql)?));
            }
            if let Some((_, stmt)) = current.as_mut() {
                stmt.execute(rusqlite::params_from_iter(row_params(row)))?;
            }
        }
    }
    tx.commit()?;
    Ok(post_back)
}

/// A parsed condition: `column op ?`.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub column: &'static str,
    pub op: &'static str,
    pub value: Value,
}

/// Which fields a condition list may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CondScope {
    /// DELETE: key fields and the table's listed delete conditions.
    Delete,
    /// COUNT/QUERY filters: any field, and the range fields.
    Filter,
}

/// Parses a condition record (`Pin=1\tFingerID=6`).
pub(crate) fn parse_conditions(
    table: &'static Table,
    record: &Record,
    scope: CondScope,
) -> Result<Vec<Condition>, DataError> {
    let mut out = Vec::with_capacity(record.0.len());
    for (name, raw) in &record.0 {
        if scope == CondScope::Filter {
            if let Some(range) = table
                .ranges
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
            {
                let n = value::normalize_kind(range.kind, raw)
                    .map_err(|e| DataError::value(table.name, range.name, e))?;
                out.push(Condition {
                    column: range.column,
                    op: if range.at_least { ">=" } else { "<=" },
                    value: n.value,
                });
                continue;
            }
        }
        let (_, field) = field_of(table, name)?;
        if scope == CondScope::Delete
            && !table.is_key(field)
            && !table.delete_by.iter().any(|d| field.matches(d))
        {
            return Err(DataError::NotACondition {
                table: table.name,
                field: field.name.to_owned(),
            });
        }
        let n = value::normalize(field, raw)
            .map_err(|e| DataError::value(table.name, field.name, e))?;
        // A validity bound compares by its raw column, as delivered.
        let op = if n.value == Value::Null { "IS" } else { "=" };
        out.push(Condition {
            column: field.column,
            op,
            value: n.value,
        });
    }
    Ok(out)
}

/// `WHERE a = ?1 AND b = ?2` (or nothing), numbering from `first`.
pub(crate) fn where_clause(conds: &[Condition], first: usize) -> String {
    if conds.is_empty() {
        return String::new();
    }
    let mut s = String::from(" WHERE ");
    for (i, c) in conds.iter().enumerate() {
        if i > 0 {
            s.push_str(" AND ");
        }
        let _ = write!(s, "{} {} ?{}", c.column, c.op, first + i);
    }
    s
}

/// Applies a DATA DELETE: each line is one condition list (or `*`).
pub(crate) fn delete(command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, DataError> {
    let (name, body) = command.table_and_body();
    let table = lookup_table(name)?;
    let bio_rule = bio::rule_for(table);
    let mut statements: Vec<Vec<Condition>> = Vec::new();
    for (line_no, line) in record_lines(body) {
        if line.trim() == "*" {
            statements.push(Vec::new());
            continue;
        }
        let record = Record::parse(line).map_err(|source| DataError::Malformed {
            line: line_no,
            source,
        })?;
        if record.0.is_empty() {
            continue;
        }
        let conds = parse_conditions(table, &record, CondScope::Delete)?;
        statements.push(conds);
    }
    if statements.is_empty() {
        return Err(DataError::BadCommand(
            "DATA DELETE without a condition or *",
        ));
    }
    if let Some(rule) = bio_rule {
        let support = BioSupport::load(ctx.store)?;
        for conds in &statements {
            support.check_delete(rule, conds)?;
        }
    }
    let tx = ctx.store.conn_mut().transaction()?;
    for conds in &statements {
        let sql = format!("DELETE FROM {}{}", table.sql, where_clause(conds, 1));
        let mut stmt = tx.prepare_cached(&sql)?;
        stmt.execute(rusqlite::params_from_iter(conds.iter().map(|c| &c.value)))?;
    }
    tx.commit()?;
    Ok(crate::commands::codes::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_text_comes_from_the_schema_only() {
        let table = lookup_table("USER").unwrap();
        let row = parse_row(
            table,
            1,
            "Pin=1\tName=x'); DROP TABLE users;--\tStartTime=20240101",
        )
        .unwrap();
        let sql = upsert_sql(table, &row);
        assert_eq!(
            sql,
            "INSERT INTO users(pin, start_raw, start_at, name) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(pin) DO UPDATE SET start_raw = excluded.start_raw, \
             start_at = excluded.start_at, name = excluded.name"
        );
    }

    #[test]
    fn every_table_fits_the_field_mask() {
        for t in schema::TABLES {
            assert!(t.fields.len() <= 128, "{}", t.name);
            for k in t.key.iter().chain(t.required).chain(t.delete_by) {
                assert!(t.field(k).is_some(), "{}: {k}", t.name);
            }
        }
    }
}
