//! DATA UPDATE (insert or replace by key) and DATA DELETE (AND of
//! conditions), each command in one transaction.

use super::bio::{self, BioSupport};
use super::condition::{clip, lookup_table, parse_conditions, where_clause, CondScope, Condition};
use super::lenient::{self, IgnoredFields};
use super::schema::Table;
use super::value::{self, Bound, Normalized};
use super::{record_lines, DataError};
use crate::commands::CommandContext;
use crate::link::LinkError;
use crate::link::TransportError;
use crate::protocol::command::Command;
use crate::protocol::record::parse_fields_into;
use crate::protocol::Record;
use base64::Engine;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One record ready to write: normalised values by field index.
pub(crate) struct Row<'a> {
    /// `(field index, value)` in field order.
    values: Vec<(usize, Normalized<'a>)>,
    mask: u128,
}

impl<'a> Row<'a> {
    fn get(&self, idx: usize) -> Option<&Bound<'a>> {
        self.values
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|(_, n)| &n.value)
    }

    fn set(&mut self, idx: usize, value: Bound<'a>) {
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

/// A table's key facts as field masks, worked out once per command.
struct TableMasks {
    key: u128,
    required: u128,
}

impl TableMasks {
    fn of(table: &'static Table) -> Self {
        let mask = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| table.field(n))
                .fold(0u128, |m, (idx, _)| m | 1u128 << idx)
        };
        TableMasks {
            key: mask(table.key),
            required: mask(table.required),
        }
    }
}

/// Resolves field names to the table's fields. The records of one command
/// nearly always name the same fields in the same order, so the name at a
/// position is first compared with the previous record's name there. A
/// name the table lacks resolves to `None` (ignored, see lenient.rs).
struct FieldResolver<'a, 'i> {
    table: &'static Table,
    previous: Vec<(&'a str, Option<usize>)>,
    /// The split fields of the record at hand, kept for its allocation.
    fields: Vec<(&'a str, &'a str)>,
    ignored: &'i mut IgnoredFields,
    /// Values of defaulted key fields left out (lenient.rs).
    defaults: Vec<(usize, Bound<'static>)>,
}

impl<'a, 'i> FieldResolver<'a, 'i> {
    fn new(table: &'static Table, ignored: &'i mut IgnoredFields) -> Self {
        FieldResolver {
            table,
            previous: Vec::new(),
            fields: Vec::new(),
            ignored,
            defaults: Vec::new(),
        }
    }

    fn resolve(&mut self, pos: usize, name: &'a str) -> Option<usize> {
        if let Some(&(prev, idx)) = self.previous.get(pos) {
            if prev == name {
                return idx;
            }
        }
        let idx = self.table.field(name).map(|(idx, _)| idx);
        if idx.is_none() {
            self.ignored.note(self.table.name, name);
        }
        if pos < self.previous.len() {
            self.previous[pos] = (name, idx);
        } else if pos == self.previous.len() {
            self.previous.push((name, idx));
        }
        idx
    }
}

/// Parses and checks one UPDATE record.
fn parse_row<'a>(
    resolver: &mut FieldResolver<'a, '_>,
    masks: &TableMasks,
    line_no: usize,
    line: &'a str,
) -> Result<Row<'a>, DataError> {
    let table = resolver.table;
    let mut fields = std::mem::take(&mut resolver.fields);
    parse_fields_into(line, &mut fields).map_err(|source| DataError::Malformed {
        line: line_no,
        source,
    })?;
    let row = check_row(table, resolver, masks, &fields);
    resolver.fields = fields;
    row
}

fn check_row<'a>(
    table: &'static Table,
    resolver: &mut FieldResolver<'a, '_>,
    masks: &TableMasks,
    fields: &[(&'a str, &'a str)],
) -> Result<Row<'a>, DataError> {
    let mut row = Row {
        values: Vec::with_capacity(fields.len()),
        mask: 0,
    };
    let mut seen = 0u128;
    let mut sorted = true;
    for (pos, &(name, raw)) in fields.iter().enumerate() {
        let Some(idx) = resolver.resolve(pos, name) else {
            continue;
        };
        let field = &table.fields[idx];
        let bit = 1u128 << idx;
        if seen & bit != 0 {
            return Err(DataError::Duplicate {
                table: table.name,
                field: field.name,
            });
        }
        seen |= bit;
        let n = value::normalize(field, raw)
            .map_err(|e| DataError::value(table.name, field.name, e))?;
        // An empty key value means "the default", not a NULL key.
        if masks.key & bit != 0 && n.value.is_empty() {
            if masks.required & bit != 0 {
                return Err(DataError::MissingKey {
                    table: table.name,
                    field: field.name,
                });
            }
            continue;
        }
        sorted &= row.values.last().is_none_or(|(last, _)| *last < idx);
        row.mask |= bit;
        row.values.push((idx, n));
    }
    if !sorted {
        row.values.sort_by_key(|(i, _)| *i);
    }
    for (idx, value) in &resolver.defaults {
        if row.mask & (1u128 << idx) == 0 {
            row.set(*idx, value.clone());
        }
    }
    if row.mask & masks.required != masks.required {
        let missing = table
            .required
            .iter()
            .find(|req| {
                table
                    .field(req)
                    .is_none_or(|(idx, _)| row.mask & (1u128 << idx) == 0)
            })
            .copied()
            .unwrap_or("key");
        return Err(DataError::MissingKey {
            table: table.name,
            field: missing,
        });
    }
    Ok(row)
}

/// 12.1.1.30/31: `Format=1` means the photo is at `Url` on the server.
fn fetch_by_url(
    table: &'static Table,
    row: &mut Row<'_>,
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
    if row.get(fmt_idx).and_then(Bound::as_int) != Some(1) {
        return Ok(());
    }
    let url = match row.get(url_idx) {
        Some(Bound::Text(u)) if !u.trim().is_empty() => u.trim().to_owned(),
        _ => {
            return Err(DataError::MissingKey {
                table: table.name,
                field: fetch.url,
            })
        }
    };
    let limit = value::MAX_BASE64 / 4 * 3;
    let mut sink = LimitedSink::new(limit);
    let reply = ctx
        .link
        .download(
            &url,
            &[],
            u64::try_from(limit).unwrap_or(u64::MAX),
            &mut sink,
        )
        .map_err(|e| match e {
            LinkError::Refused(refused) => DataError::RefusedUrl(refused.to_string()),
            LinkError::Transport(TransportError::TooLarge { .. }) => DataError::Download {
                url: clip(&url),
                detail: "file larger than 3 MB".into(),
            },
            e => DataError::Download {
                url: clip(&url),
                detail: e.to_string(),
            },
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
    row.set(content_idx, Bound::Text(b64.into()));
    row.set(size_idx, Bound::Int(len));
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
fn check_size(table: &'static Table, row: &Row<'_>) -> Result<(), DataError> {
    let Some((size_name, content_name)) = table.size_check else {
        return Ok(());
    };
    let (Some((size_idx, size_field)), Some((content_idx, _))) =
        (table.field(size_name), table.field(content_name))
    else {
        return Ok(());
    };
    if let (Some(Bound::Int(size)), Some(Bound::Text(content))) =
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

/// The UPSERT for one shape of record and `rows` records at once, from the
/// static description only.
fn upsert_sql(table: &'static Table, row: &Row<'_>, rows: usize) -> String {
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
    let mut values = String::new();
    for r in 0..rows {
        if r > 0 {
            values.push_str(", ");
        }
        values.push('(');
        for i in 1..=n {
            if i > 1 {
                values.push_str(", ");
            }
            let _ = write!(values, "?{}", r * n + i);
        }
        values.push(')');
    }
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
        "INSERT INTO {}({cols}) VALUES {values} ON CONFLICT({keys}) {action}",
        table.sql
    )
}

/// Values bound per record: its fields and their derived columns.
fn row_params<'r, 'a>(row: &'r Row<'a>) -> impl Iterator<Item = &'r Bound<'a>> {
    row.values
        .iter()
        .flat_map(|(_, n)| std::iter::once(&n.value).chain(n.derived.as_ref().map(|(_, v)| v)))
}

/// Records written by one multi-row UPSERT. SQLite runs the rows of one
/// statement in order, so a key repeated inside a group is updated as it
/// would be by separate statements; grouping saves a step, a reset and a
/// cursor per record.
const ROWS_PER_STATEMENT: usize = 64;

/// Applies a DATA UPDATE. Returns whether a record asked for a template
/// post-back (PostBackTmpFlag=1).
pub(crate) fn update(
    sql_cache: &mut HashMap<(&'static str, u128, usize), String>,
    ignored: &mut IgnoredFields,
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
    let masks = TableMasks::of(table);
    let mut resolver = FieldResolver::new(table, ignored);
    resolver.defaults = lenient::key_defaults(table, ctx.store)?;
    let type_idx = table.field("type").map(|(idx, _)| idx);
    let mut rows = Vec::new();
    for (line_no, line) in record_lines(body) {
        let mut row = parse_row(&mut resolver, &masks, line_no, line)?;
        fetch_by_url(table, &mut row, ctx)?;
        check_size(table, &row)?;
        if let (Some(rule), Some(support)) = (bio_rule, &support) {
            let ty = type_idx
                .and_then(|idx| row.get(idx))
                .and_then(Bound::as_int)
                .unwrap_or(bio::VISIBLE_LIGHT_FACE);
            support.check_update(rule, ty)?;
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DataError::BadCommand("DATA UPDATE without records"));
    }
    let post_back = table.field("PostBackTmpFlag").is_some_and(|(idx, _)| {
        rows.iter()
            .any(|r| r.get(idx).and_then(Bound::as_int) == Some(1))
    });
    let tx = ctx.store.conn_mut().transaction()?;
    {
        let mut params: Vec<&Bound<'_>> = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            // A run of records of one shape: whole groups through one
            // statement, the rest one record at a time.
            let mask = rows[start].mask;
            let run = rows[start..].iter().take_while(|r| r.mask == mask).count();
            let run_rows = &rows[start..start + run];
            let split = run - run % ROWS_PER_STATEMENT;
            for (chunks, count) in [
                (
                    run_rows[..split].chunks(ROWS_PER_STATEMENT),
                    ROWS_PER_STATEMENT,
                ),
                (run_rows[split..].chunks(1), 1),
            ] {
                let mut stmt = None;
                for chunk in chunks {
                    let stmt = match stmt.as_mut() {
                        Some(stmt) => stmt,
                        None => {
                            let sql = sql_cache
                                .entry((table.name, mask, count))
                                .or_insert_with(|| upsert_sql(table, &chunk[0], count));
                            stmt.insert(tx.prepare_cached(sql)?)
                        }
                    };
                    params.clear();
                    params.extend(chunk.iter().flat_map(row_params));
                    stmt.execute(rusqlite::params_from_iter(params.iter()))?;
                }
            }
            start += run;
        }
    }
    // The result commits with the records it answers for.
    crate::store::Store::settle_command_in(&tx, &command.id, crate::commands::codes::OK)?;
    tx.commit()?;
    Ok(post_back)
}

/// Applies a DATA DELETE: each line is one condition list (or `*`).
/// The table a DELETE removes from. 12.1.2.24 "Delete Reader Wiegand
/// Format" writes the table as `WGFormat` (12.1.2.23's name) with
/// `ReaderID=`/`DevID=` conditions and calls it "the reader Wiegand format
/// table": those conditions, which `WGFormat` lacks, mean `ReaderWGFormat`.
/// `*` and `ID=`/`CardBit=` stay with `WGFormat` (12.1.2.23).
fn delete_table(table: &'static Table, body: &str) -> &'static Table {
    let names_reader =
        |key: &str| key.eq_ignore_ascii_case("ReaderID") || key.eq_ignore_ascii_case("DevID");
    if table.name == "WGFormat"
        && body
            .split(['\t', '\n', ' '])
            .filter_map(|p| p.split_once('='))
            .any(|(k, _)| names_reader(k.trim()))
    {
        return crate::commands::data::schema::table("ReaderWGFormat").unwrap_or(table);
    }
    table
}

pub(crate) fn delete(command: &Command, ctx: &mut CommandContext<'_>) -> Result<i64, DataError> {
    let (name, body) = command.table_and_body();
    let table = delete_table(lookup_table(name)?, body);
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
    crate::store::Store::settle_command_in(&tx, &command.id, crate::commands::codes::OK)?;
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
            &mut FieldResolver::new(table, &mut IgnoredFields::default()),
            &TableMasks::of(table),
            1,
            "Pin=1\tName=x'); DROP TABLE users;--\tStartTime=20240101",
        )
        .unwrap();
        assert_eq!(
            upsert_sql(table, &row, 1),
            "INSERT INTO users(pin, start_raw, start_at, name) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(pin) DO UPDATE SET start_raw = excluded.start_raw, \
             start_at = excluded.start_at, name = excluded.name"
        );
        assert_eq!(
            upsert_sql(table, &row, 2),
            "INSERT INTO users(pin, start_raw, start_at, name) \
             VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8) \
             ON CONFLICT(pin) DO UPDATE SET start_raw = excluded.start_raw, \
             start_at = excluded.start_at, name = excluded.name"
        );
    }

    fn store_with(
        command: &str,
    ) -> (
        tempfile::TempDir,
        crate::store::Store,
        Result<bool, DataError>,
    ) {
        use crate::clock::DeviceClock;
        use crate::link::OfflineLink;
        use crate::platform::RecordingPlatform;
        use crate::protocol::command::Command;
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(dir.path()).unwrap();
        let (lines, _) = crate::protocol::parse_getrequest(&format!("C:1:{command}"));
        let command = Command::classify(&lines[0]);
        let clock = DeviceClock::new(0);
        let platform = RecordingPlatform::new();
        let mut link = OfflineLink { serial: "T".into() };
        let mut ctx = CommandContext {
            store: &mut store,
            link: &mut link,
            clock: &clock,
            platform: &platform,
        };
        let result = update(
            &mut HashMap::new(),
            &mut IgnoredFields::default(),
            &command,
            &mut ctx,
        );
        (dir, store, result)
    }

    #[test]
    fn grouped_rows_keep_record_order_for_repeated_keys() {
        // 70 records: two groups of 32 and six single ones, with pin 5
        // written first in a group, again inside the same group, and last
        // as a single record.
        let mut lines: Vec<String> = (0..70)
            .map(|i| format!("Pin={}\tName=n{i}", i % 40))
            .collect();
        lines[6] = "Pin=5\tName=second".into();
        lines[69] = "Pin=5\tName=last".into();
        let (_dir, store, result) = store_with(&format!("DATA UPDATE user {}", lines.join("\n")));
        result.unwrap();
        let conn = store.conn();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 40);
        let name: String = conn
            .query_row("SELECT name FROM users WHERE pin = '5'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "last");
        let name: String = conn
            .query_row("SELECT name FROM users WHERE pin = '39'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "n39");
    }

    #[test]
    fn runs_of_different_shapes_are_written_each_with_its_own_statement() {
        // 40 records with validity dates, 5 without, 40 with again: groups,
        // single records and derived columns in one command.
        let lines: Vec<String> = (0..85)
            .map(|i| {
                if (40..45).contains(&i) {
                    format!("Pin={i}\tName=n{i}")
                } else {
                    format!("Pin={i}\tName=n{i}\tStartTime=20240101\tEndTime=20241231")
                }
            })
            .collect();
        let (_dir, store, result) = store_with(&format!("DATA UPDATE user {}", lines.join("\n")));
        result.unwrap();
        let conn = store.conn();
        let dated: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM users WHERE start_at = '2024-01-01 00:00:00' \
                 AND end_at = '2024-12-31 23:59:59' AND start_raw = '20240101'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(dated, 80);
        let undated: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM users WHERE start_at IS NULL AND start_raw = '0'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(undated, 5);
    }

    #[test]
    fn a_bad_record_after_a_full_group_leaves_nothing() {
        let mut lines: Vec<String> = (0..40).map(|i| format!("Pin={i}\tName=n{i}")).collect();
        lines.push("Pin=41\tName=x\tPrivilege=many".into());
        let (_dir, store, result) = store_with(&format!("DATA UPDATE user {}", lines.join("\n")));
        assert_eq!(
            result.unwrap_err().code(),
            crate::commands::codes::BAD_DATA_FORMAT
        );
        let count: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn field_names_resolve_in_any_order_and_case() {
        let (_dir, store, result) = store_with(
            "DATA UPDATE user Pin=1\tName=a\tCardNo=7\nname=b\tPIN=2\tcardno=[08]\nCardNo=9\tPin=3",
        );
        result.unwrap();
        let rows: Vec<(String, String, String)> = store
            .conn()
            .prepare("SELECT pin, name, cardno FROM users ORDER BY pin")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("1".into(), "a".into(), "7".into()),
                ("2".into(), "b".into(), "8".into()),
                ("3".into(), "".into(), "9".into()),
            ]
        );
    }

    #[test]
    fn every_table_fits_the_field_mask() {
        for t in crate::commands::data::schema::TABLES {
            assert!(t.fields.len() <= 128, "{}", t.name);
            // Every field plus a derived column, for a whole group, stays
            // within SQLite's 32,766 bound parameters.
            assert!(
                t.fields.len() * 2 * ROWS_PER_STATEMENT <= 32_766,
                "{}",
                t.name
            );
            let defaulted = t.key_defaults.iter().map(|(k, _)| k);
            for k in t
                .key
                .iter()
                .chain(t.required)
                .chain(t.delete_by)
                .chain(defaulted)
            {
                assert!(t.field(k).is_some(), "{}: {k}", t.name);
            }
        }
    }
}
