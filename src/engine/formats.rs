//! Wiegand formats per reader: the decoding table each reader's frames are
//! decoded with, built from the server's tables (12.1.1.22–24) and the
//! board, and kept until another connection changes the database
//! (`PRAGMA data_version`). Owns that cache. It NEVER decodes a frame
//! (the HAL's `wiegand::decode` does) and never decides anything about
//! the card it names.

use super::rules;
use lintel_hal::board::BoardConfig;
use lintel_hal::wiegand::{self, FormatTable};
use rusqlite::Connection;
use std::collections::HashMap;

/// Decoding tables per reader, valid for one data version.
#[derive(Debug, Default)]
pub(super) struct FormatCache {
    cache: HashMap<u8, FormatTable>,
    version: Option<i64>,
}

impl FormatCache {
    /// The formats a reader's frames are decoded with, built once and kept
    /// until another connection changes the database (data_version).
    pub(super) fn table(
        &mut self,
        conn: &Connection,
        board: &BoardConfig,
        reader: u8,
        data_version: i64,
    ) -> &FormatTable {
        if self.version != Some(data_version) || data_version < 0 {
            self.cache.clear();
            self.version = Some(data_version);
        }
        self.cache
            .entry(reader)
            .or_insert_with(|| match build_table(conn, board, reader) {
                Ok(t) => t,
                Err(e) => {
                    log::error!(
                        "reader {reader}: cannot read the Wiegand formats ({e}); using the board's"
                    );
                    board_formats(board, reader)
                }
            })
    }
}

/// The board's format of the reader (the standard ones if it names a bad one).
fn board_formats(board: &BoardConfig, reader: u8) -> FormatTable {
    match board.reader(reader) {
        Some(r) => match board.reader_format(r) {
            Ok(f) => FormatTable::single(f),
            Err(e) => {
                log::warn!("reader {reader}: {e}; trying the standard formats");
                FormatTable::standard()
            }
        },
        None => FormatTable::standard(),
    }
}

/// Server-defined formats (12.1.1.22–24): a reader with a
/// `ReaderWGFormat` row decodes with that `WGFormat` only (with its
/// parity and reversal settings), unless its door has DoorAutoMatch=1;
/// other readers (and auto-matching ones after their own) try the
/// board's format, then every `WGFormat`, then every `DefaultWGFormat`.
/// Rows that do not make a format are skipped and logged.
fn build_table(
    conn: &Connection,
    board: &BoardConfig,
    reader: u8,
) -> rusqlite::Result<FormatTable> {
    let parse = |row: &rules::WgFormatRow| -> Option<wiegand::Format> {
        let bits = row.card_bit.and_then(|b| usize::try_from(b).ok());
        let site = row.site_code.map_or(Some(0), |s| u32::try_from(s).ok());
        let (Some(bits), Some(site)) = (bits, site) else {
            log::warn!(
                "Wiegand format {}: CardBit/SiteCode out of range; skipped",
                row.id
            );
            return None;
        };
        match wiegand::Format::from_server_record(bits, site, &row.name, &row.card_format) {
            Ok(f) => Some(f),
            Err(e) => {
                log::warn!(
                    "Wiegand format {} ({:?}): {e}; skipped",
                    row.id,
                    row.card_format
                );
                None
            }
        }
    };
    let server: Vec<(i64, wiegand::Format)> = rules::wiegand_formats(conn)?
        .iter()
        .filter_map(|r| parse(r).map(|f| (r.id, f)))
        .collect();
    let mut table = FormatTable {
        formats: Vec::new(),
        parity_check: true,
        reversal: wiegand::ReversalType::None,
    };
    if let Some(row) = rules::reader_wiegand_format(conn, reader)? {
        let id = row.format_id;
        table.parity_check = !row.parity_off;
        let code = row
            .reversal
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0);
        table.reversal = wiegand::ReversalType::from_code(code).unwrap_or_else(|| {
            log::warn!("reader {reader}: ReversalType {code} is unknown; none");
            wiegand::ReversalType::None
        });
        match server.iter().find(|(fid, _)| Some(*fid) == id) {
            Some((_, f)) => table.formats.push(f.clone()),
            None => log::warn!(
                "reader {reader}: ReaderWGFormat names format {id:?}, which was not delivered or is unusable"
            ),
        }
    }
    let door = board.reader(reader).map(|r| r.door);
    let auto = match door {
        Some(d) => rules::door_number(conn, d, "AutoMatch")? == Some(1),
        None => false,
    };
    if table.formats.is_empty() || auto {
        table.formats.extend(board_formats(board, reader).formats);
        table.formats.extend(server.into_iter().map(|(_, f)| f));
        table.formats.extend(
            rules::default_wiegand_formats(conn)?
                .iter()
                .filter_map(parse),
        );
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn board() -> BoardConfig {
        BoardConfig::from_toml_str(include_str!("../../board-configs/sim-4door.toml")).unwrap()
    }

    #[test]
    fn tables_are_kept_until_the_data_version_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        let board = board();
        let mut cache = FormatCache::default();
        let own = board_formats(&board, 1);
        assert_eq!(own.formats.len(), 1, "sim-4door names one format");
        let t = cache.table(c, &board, 1, 1).clone();
        assert_eq!(t.formats, own.formats, "nothing from the server yet");
        assert!(t.parity_check);
        // The reader's row names a format that was never delivered and turns parity off.
        c.execute(
            "INSERT INTO reader_wiegand_formats(reader_id, wg_format_id, parity_verify_disable) VALUES (1, 42, 1)",
            [],
        )
        .unwrap();
        assert!(
            cache.table(c, &board, 1, 1).parity_check,
            "kept for version 1"
        );
        let t = cache.table(c, &board, 1, 2).clone();
        assert!(!t.parity_check, "rebuilt for version 2");
        assert_eq!(
            t.formats, own.formats,
            "the board's format, as no row made one"
        );
        assert_eq!(
            cache.table(c, &board, 99, 2).formats,
            FormatTable::standard().formats,
            "a reader the board lacks decodes with the standard formats"
        );
    }

    #[test]
    fn an_unknown_version_rebuilds_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        let board = board();
        let mut cache = FormatCache::default();
        assert!(cache.table(c, &board, 1, -1).parity_check);
        c.execute(
            "INSERT INTO reader_wiegand_formats(reader_id, parity_verify_disable) VALUES (1, 1)",
            [],
        )
        .unwrap();
        assert!(!cache.table(c, &board, 1, -1).parity_check);
    }
}
