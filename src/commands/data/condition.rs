//! Conditions of DATA DELETE, COUNT and QUERY: which table a command names,
//! a condition record (`Pin=1\tFingerID=6`) parsed into columns, operators
//! and bound values, and the `WHERE` clause that binds them. Table and field
//! names come from the schema only, never from the command text. Shared by
//! DATA UPDATE/DELETE, the biometric rules, queries and uploads; it never
//! runs SQL itself.

use super::schema::{self, Field, Table};
use super::value::{self, Bound};
use super::DataError;
use crate::protocol::Record;
use rusqlite::types::Value;
use std::fmt::Write as _;

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
                    value: n.value.into_value(),
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
        let op = if n.value == Bound::Null { "IS" } else { "=" };
        out.push(Condition {
            column: field.column,
            op,
            value: n.value.into_value(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Record {
        let mut r = Record(Vec::new());
        for pair in text.split('\t') {
            let (k, v) = pair.split_once('=').unwrap();
            r.0.push((k.into(), v.into()));
        }
        r
    }

    #[test]
    fn delete_conditions_are_keys_or_listed_fields_and_bind_their_values() {
        let table = lookup_table("user").unwrap();
        let conds = parse_conditions(table, &record("Pin=7"), CondScope::Delete).unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!((conds[0].column, conds[0].op), ("pin", "="));
        assert_eq!(where_clause(&conds, 3), " WHERE pin = ?3");
        assert!(matches!(
            parse_conditions(table, &record("Name=x"), CondScope::Delete),
            Err(DataError::NotACondition { .. })
        ));
        assert!(matches!(
            parse_conditions(table, &record("Nope=1"), CondScope::Filter),
            Err(DataError::UnknownField { .. })
        ));
        assert!(matches!(
            lookup_table("no_such_table"),
            Err(DataError::UnknownTable(_))
        ));
    }

    #[test]
    fn filters_take_any_field_and_no_conditions_make_no_where() {
        let table = lookup_table("user").unwrap();
        let conds = parse_conditions(table, &record("Pin=7\tName=Ann"), CondScope::Filter).unwrap();
        assert_eq!(where_clause(&conds, 1), " WHERE pin = ?1 AND name = ?2");
        assert_eq!(where_clause(&[], 1), "");
        assert_eq!(clip(&"x".repeat(100)).len(), 40);
    }
}
