//! The server's Wiegand format tables (12.1.1.22–24): `WGFormat`,
//! `DefaultWGFormat` and each reader's `ReaderWGFormat` row, as stored.
//! Reading only: building decoding tables from them is the engine's
//! `formats` room.

use rusqlite::{Connection, OptionalExtension};

/// A server-defined Wiegand format row (`WGFormat` / `DefaultWGFormat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgFormatRow {
    pub id: i64,
    pub card_bit: Option<i64>,
    pub site_code: Option<i64>,
    pub name: String,
    pub card_format: String,
}

fn wg_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<WgFormatRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(WgFormatRow {
            id: r.get(0)?,
            card_bit: r.get(1)?,
            site_code: r.get(2)?,
            name: r.get(3)?,
            card_format: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Every `WGFormat` row, by id.
pub fn wiegand_formats(conn: &Connection) -> rusqlite::Result<Vec<WgFormatRow>> {
    wg_rows(
        conn,
        "SELECT id, card_bit, site_code, format_name, card_format FROM wiegand_formats ORDER BY id",
    )
}

/// Every `DefaultWGFormat` row, by id.
pub fn default_wiegand_formats(conn: &Connection) -> rusqlite::Result<Vec<WgFormatRow>> {
    wg_rows(
        conn,
        "SELECT id, card_bit, site_code, format_name, card_format FROM default_wiegand_formats ORDER BY id",
    )
}

/// A reader's `ReaderWGFormat` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderWgFormat {
    pub format_id: Option<i64>,
    pub parity_off: bool,
    pub reversal: Option<i64>,
}

pub fn reader_wiegand_format(
    conn: &Connection,
    reader: u8,
) -> rusqlite::Result<Option<ReaderWgFormat>> {
    conn.prepare_cached(
        "SELECT wg_format_id, parity_verify_disable, reversal_type FROM reader_wiegand_formats
         WHERE reader_id = ?1 LIMIT 1",
    )?
    .query_row([reader], |r| {
        Ok(ReaderWgFormat {
            format_id: r.get(0)?,
            parity_off: r.get::<_, Option<i64>>(1)? == Some(1),
            reversal: r.get(2)?,
        })
    })
    .optional()
}
