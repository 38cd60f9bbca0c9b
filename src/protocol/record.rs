//! Data records: TAB-separated `key=value` fields, one record per line.

/// One record, fields in the order they were written. Output keeps the exact
/// spelling the spec uses; lookup is case-insensitive because servers vary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record(pub Vec<(String, String)>);

impl Record {
    pub fn new() -> Self {
        Record(Vec::new())
    }

    /// Appends a field (builder style).
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn push(&mut self, key: &str, value: impl ToString) {
        self.0.push((key.to_owned(), value.to_string()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Parses one record line. TAB is the separator the spec prescribes; a line
    /// without any TAB is split before every ` Key=` instead, because some
    /// servers separate fields with spaces while values (names) may contain
    /// spaces too (interop.md). A field without `=` is a malformed record.
    pub fn parse(line: &str) -> Result<Record, RecordError> {
        let fields = parse_fields(line)?;
        Ok(Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }

    /// Formats as the spec writes records: `k=v<TAB>k=v`.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

/// Parses one record line into borrowed `(key, value)` pairs, as
/// [`Record::parse`] does, without allocating a string per field (bulk
/// DATA commands carry thousands of records).
pub fn parse_fields(line: &str) -> Result<Vec<(&str, &str)>, RecordError> {
    let mut fields = Vec::new();
    parse_fields_into(line, &mut fields)?;
    Ok(fields)
}

/// [`parse_fields`] into a caller's buffer (cleared first), so a command of
/// thousands of records reuses one allocation.
pub fn parse_fields_into<'a>(
    line: &'a str,
    fields: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), RecordError> {
    fields.clear();
    let line = line.trim_end_matches(['\r', '\n']);
    if line.contains('\t') {
        for piece in line.split('\t') {
            push_field(fields, piece)?;
        }
    } else {
        for piece in split_on_spaced_keys(line) {
            push_field(fields, piece)?;
        }
    }
    Ok(())
}

fn push_field<'a>(fields: &mut Vec<(&'a str, &'a str)>, piece: &'a str) -> Result<(), RecordError> {
    let piece = trim_spaces_and_cr(piece);
    if piece.is_empty() {
        return Ok(());
    }
    match piece.split_once('=') {
        Some((k, v)) if is_key(k.trim()) => {
            fields.push((k.trim(), v));
            Ok(())
        }
        _ => Err(RecordError::FieldWithoutKey(truncate(piece))),
    }
}

/// Trims spaces and CRs at both ends (byte-wise: both are ASCII).
pub(crate) fn trim_spaces_and_cr(s: &str) -> &str {
    let is_pad = |b: &u8| *b == b' ' || *b == b'\r';
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !is_pad(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |e| e + 1);
    // Both ends sit next to ASCII bytes, so they are char boundaries.
    &s[start..end.max(start)]
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record field {0:?} has no key=value form")]
    FieldWithoutKey(String),
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A key is a short identifier (`Pin`, `~DeviceName`, `Hol1Time1`).
fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'~' || b == b'.')
}

/// Splits `a=1 b=x y c=2` into `a=1`, `b=x y`, `c=2`.
fn split_on_spaced_keys(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut starts = vec![0usize];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            // Candidate start of a new field after this run of spaces.
            let mut j = i;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            let rest = &line[j..];
            if let Some(eq) = rest.find('=') {
                if eq > 0 && is_key(&rest[..eq]) {
                    starts.push(j);
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(line.len());
        out.push(&line[s..end]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_separated_record() {
        let r = Record::parse("Pin=1\tName=Ann Lee\tCardNo=\r").unwrap();
        assert_eq!(r.get("pin"), Some("1"));
        assert_eq!(r.get("Name"), Some("Ann Lee"));
        assert_eq!(r.get("CARDNO"), Some(""));
        assert_eq!(r.to_line(), "Pin=1\tName=Ann Lee\tCardNo=");
    }

    #[test]
    fn space_separated_record_keeps_spaces_inside_values() {
        let r = Record::parse("CardNo= Pin=1 Name=Ann Lee Privilege=0").unwrap();
        assert_eq!(r.get("CardNo"), Some(""));
        assert_eq!(r.get("Name"), Some("Ann Lee"));
        assert_eq!(r.get("Privilege"), Some("0"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Record::parse("\tnot a field").is_err());
        assert!(Record::parse("=x").is_err());
        assert_eq!(Record::parse("").unwrap(), Record::new());
    }
}
