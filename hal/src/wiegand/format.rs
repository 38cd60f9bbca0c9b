//! Wiegand formats: the standard ones and the server's `CardFormat` strings, decoding and
//! encoding with parity, site code and the reader's `ReversalType`.
//!
//! # CardFormat strings (spec 12.1.1.22–23)
//!
//! `layout:parity`, one character per bit in arrival order, e.g. the 26-bit H10301 format is
//! `pssssssssccccccccccccccccp:eeeeeeeeeeeeeooooooooooooo`.
//!
//! Layout: `p` parity bit, `c` card-number bit, `s` (or `f`) site/facility-code bit,
//! `m`/`x`/`-` a bit that is ignored (manufacturer or OEM code).
//! Parity part (optional): `e` the bit is counted in the even-parity group, `o` in the
//! odd-parity group, `b` in both, `x`/`-` in neither. A group's count of ones (its own
//! parity bit included) must be even (`e`) or odd (`o`). Each group owns the one `p` it
//! contains; that is the bit the encoder computes.
//!
//! The spec's own example (`pcccccccccccccccccccccp:eeeeeeeeeeeeeeeeoooooooooooo`) has a
//! 23-character layout and a 28-character parity part for `CardBit=26`; the text says the
//! record is 26 bits, so [`Format::from_server_record`] follows `CardBit` and rebuilds such a
//! string as "parity, fields, parity" with the standard half/half parity groups (see there).

use super::{WiegandBits, WiegandFrame, MAX_FRAME_BITS};

/// Errors in a format definition or when a value does not fit a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("empty card format")]
    Empty,
    #[error("card format character `{0}` is not one of p c s f m x -")]
    BadLayoutChar(char),
    #[error("parity character `{0}` is not one of e o b x -")]
    BadParityChar(char),
    #[error("layout has {layout} bits but the parity part has {parity}")]
    LengthMismatch { layout: usize, parity: usize },
    #[error("format has {0} bits; at most {MAX_FRAME_BITS} are supported")]
    TooLong(usize),
    #[error("{field} field has {bits} bits; at most {max} are supported")]
    FieldTooWide {
        field: &'static str,
        bits: usize,
        max: usize,
    },
    #[error("parity bit at position {0} is in no parity group, or in both")]
    ParityBitUnassigned(usize),
    #[error("the {0} parity group has {1} parity bits; it needs exactly one")]
    ParityGroupBits(&'static str, usize),
    #[error("value {value} does not fit the {bits}-bit {field} field")]
    ValueTooLarge {
        field: &'static str,
        value: u64,
        bits: usize,
    },
    #[error("unknown Wiegand format name `{0}` (known: {names}, or a CardFormat string)", names = super::named::NAMES)]
    UnknownName(String),
    #[error("format {0} has no site-code bits, so no site code can be sent with it")]
    NoSiteBits(String),
}

/// Short classification of [`FormatError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatErrorKind {
    /// The format text is malformed.
    Syntax,
    /// A value does not fit the format.
    Range,
}

impl FormatError {
    pub fn kind(&self) -> FormatErrorKind {
        match self {
            FormatError::ValueTooLarge { .. } | FormatError::NoSiteBits(_) => {
                FormatErrorKind::Range
            }
            _ => FormatErrorKind::Syntax,
        }
    }
}

/// What one bit position of a format carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitRole {
    Parity,
    Card,
    Site,
    Ignore,
}

/// One parity group: the positions it covers (its own parity bit included) and its sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityCheck {
    /// True: the count of ones must be odd; false: even.
    pub odd: bool,
    /// The position of the bit that makes the count right (arrival order).
    pub parity_bit: usize,
    /// Bit `i` set = position `i` is covered.
    pub mask: u128,
}

/// A Wiegand format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// Name for logs and `Decoded::Card::format` (FormatName from the server).
    pub name: String,
    /// One role per bit, arrival order.
    pub roles: Vec<BitRole>,
    pub checks: Vec<ParityCheck>,
    /// The server record's `SiteCode`: for a format without site bits it is the site code
    /// reported with every card; for a format with site bits a nonzero value must match
    /// (a card of another site does not match this format). 0 / None: no constraint.
    pub site_code: Option<u32>,
}

/// `ReversalType` of a reader's Wiegand format (spec 12.1.1.24).
///
/// The spec gives one line each: "1: Invert all bits. 2: Invert 0 and 1. 3: Exchange low
/// bits with high bits. 4: Exchange a low bit with a high bit." and AccSupportFunList bit 33
/// calls the feature "data processing, byte swap, and bit reversal". Our reading, stated
/// here because the spec leaves it open:
/// 1. every bit of the raw frame complemented before parity is checked (D0/D1 swapped);
/// 2. the card-number bits complemented after the parity check;
/// 3. byte swap: the card number's bytes in reverse order (width: card bits rounded up
///    to whole bytes);
/// 4. bit reversal: the card number's bits mirrored (bit i ↔ bit n-1-i over the card
///    field's width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReversalType {
    #[default]
    None,
    InvertAllBits,
    InvertCardBits,
    ByteSwap,
    BitMirror,
}

impl ReversalType {
    /// From the server's numeric code; unknown codes are `None` (and logged by the caller).
    pub fn from_code(code: u32) -> Option<ReversalType> {
        match code {
            0 => Some(ReversalType::None),
            1 => Some(ReversalType::InvertAllBits),
            2 => Some(ReversalType::InvertCardBits),
            3 => Some(ReversalType::ByteSwap),
            4 => Some(ReversalType::BitMirror),
            _ => None,
        }
    }

    pub fn code(self) -> u32 {
        match self {
            ReversalType::None => 0,
            ReversalType::InvertAllBits => 1,
            ReversalType::InvertCardBits => 2,
            ReversalType::ByteSwap => 3,
            ReversalType::BitMirror => 4,
        }
    }

    /// The card-number transform (types 2–4); self-inverse, so encoders use it too.
    pub fn apply_to_card(self, number: u64, card_bits: usize) -> u64 {
        match self {
            ReversalType::None | ReversalType::InvertAllBits => number,
            ReversalType::InvertCardBits => {
                let mask = low_mask(card_bits);
                !number & mask
            }
            ReversalType::ByteSwap => {
                let bytes = card_bits.div_ceil(8).min(8);
                let mut out = 0u64;
                for i in 0..bytes {
                    let byte = (number >> (8 * i)) & 0xff;
                    out |= byte << (8 * (bytes - 1 - i));
                }
                out
            }
            ReversalType::BitMirror => {
                let n = card_bits.min(64);
                let mut out = 0u64;
                for i in 0..n {
                    if (number >> i) & 1 == 1 {
                        out |= 1 << (n - 1 - i);
                    }
                }
                out
            }
        }
    }
}

fn low_mask(bits: usize) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The formats a reader tries, in order, and its `ReaderWGFormat` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatTable {
    pub formats: Vec<Format>,
    /// False when the server sent `ParityVerifyDisable=1`.
    pub parity_check: bool,
    pub reversal: ReversalType,
}

impl FormatTable {
    /// The built-in standard formats, parity checked, no reversal.
    pub fn standard() -> FormatTable {
        FormatTable {
            formats: Format::standard_formats(),
            parity_check: true,
            reversal: ReversalType::None,
        }
    }

    /// A table holding one format.
    pub fn single(format: Format) -> FormatTable {
        FormatTable {
            formats: vec![format],
            parity_check: true,
            reversal: ReversalType::None,
        }
    }
}

/// Why a frame matched no format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFormatReason {
    /// No format of this length (and not a keypad burst).
    UnknownLength,
    /// A format of this length exists but the parity was wrong.
    Parity,
    /// A format of this length with a fixed site code exists, the site code differed.
    SiteCode,
    /// More than 128 bits arrived.
    Overflow,
}

/// The outcome of decoding one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Card {
        number: u64,
        site_code: Option<u32>,
        /// Name of the format that matched.
        format: String,
    },
    /// Keypad key(s): `0`–`9`, `*`, `#`, and `A`–`D` for the four codes above `#`.
    Keys(String),
    /// Event 42 "Incorrect Wiegand format" material.
    BadFormat {
        bits: WiegandBits,
        reason: BadFormatReason,
    },
}

/// Decodes a frame with the reader's format table. Pure: no clock, no I/O.
pub fn decode(frame: &WiegandFrame, table: &FormatTable) -> Decoded {
    decode_bits(&frame.bits, table)
}

/// [`decode`] on bare bits.
pub fn decode_bits(bits: &WiegandBits, table: &FormatTable) -> Decoded {
    if bits.overflow() {
        return Decoded::BadFormat {
            bits: *bits,
            reason: BadFormatReason::Overflow,
        };
    }
    let raw = if table.reversal == ReversalType::InvertAllBits {
        bits.inverted()
    } else {
        *bits
    };
    let mut reason = BadFormatReason::UnknownLength;
    for format in table.formats.iter().filter(|f| f.len() == raw.len()) {
        if table.parity_check && !format.parity_ok(&raw) {
            reason = BadFormatReason::Parity;
            continue;
        }
        let (site, card) = format.fields(&raw);
        let site_code = match (format.site_bits(), format.site_code) {
            (0, Some(fixed)) if fixed != 0 => Some(fixed),
            (0, _) => None,
            (_, Some(fixed)) if fixed != 0 && u64::from(fixed) != site => {
                if reason != BadFormatReason::Parity {
                    reason = BadFormatReason::SiteCode;
                }
                continue;
            }
            (_, _) => u32::try_from(site).ok(),
        };
        let number = table.reversal.apply_to_card(card, format.card_bits());
        return Decoded::Card {
            number,
            site_code,
            format: format.name.clone(),
        };
    }
    if let Some(key) = keypad_key(&raw) {
        return Decoded::Keys(key.to_string());
    }
    Decoded::BadFormat {
        bits: *bits,
        reason,
    }
}

/// A 4-bit key code, or an 8-bit one whose high nibble is the complement of the low one
/// (the two keypad modes readers offer).
fn keypad_key(bits: &WiegandBits) -> Option<char> {
    let v = bits.as_u128();
    let code = match bits.len() {
        4 => u8::try_from(v).ok()?,
        8 => {
            let byte = u8::try_from(v).ok()?;
            let (high, low) = (byte >> 4, byte & 0x0f);
            if high != (!low & 0x0f) {
                return None;
            }
            low
        }
        _ => return None,
    };
    key_char(code)
}

/// Key code → character: 0–9, 10 `*`, 11 `#`, 12–15 `A`–`D` (function keys on some pads).
pub fn key_char(code: u8) -> Option<char> {
    match code {
        0..=9 => char::from_digit(u32::from(code), 10),
        10 => Some('*'),
        11 => Some('#'),
        12 => Some('A'),
        13 => Some('B'),
        14 => Some('C'),
        15 => Some('D'),
        _ => None,
    }
}

/// Character → key code (inverse of [`key_char`]).
pub fn key_code(c: char) -> Option<u8> {
    match c {
        '0'..='9' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => u8::try_from(u32::from(c) - u32::from('A') + 12).ok(),
        _ => None,
    }
}

/// The frame a keypad sends for one key: 4 bits, or 8 bits with the complement on top.
pub fn keypad_frame(key: char, eight_bit: bool) -> Option<WiegandBits> {
    let code = key_code(key)?;
    let mut bits = WiegandBits::new();
    let value = if eight_bit {
        ((!code & 0x0f) << 4) | code
    } else {
        code
    };
    let width = if eight_bit { 8 } else { 4 };
    for i in (0..width).rev() {
        bits.push((value >> i) & 1 == 1);
    }
    Some(bits)
}

impl Format {
    /// Number of bits in a frame of this format.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    pub fn card_bits(&self) -> usize {
        self.roles.iter().filter(|r| **r == BitRole::Card).count()
    }

    pub fn site_bits(&self) -> usize {
        self.roles.iter().filter(|r| **r == BitRole::Site).count()
    }

    /// The built-in formats tried when nothing else is known (see [`super::named`]).
    pub fn standard_formats() -> Vec<Format> {
        super::named::default_formats()
    }

    /// A built-in format by name (`wiegand26`, `26a`, `h10301`, ...; see [`super::named`]).
    pub fn standard(name: &str) -> Option<Format> {
        super::named::by_name(name)
    }

    /// A standard name or, failing that, a CardFormat string.
    pub fn by_name_or_card_format(text: &str) -> Result<Format, FormatError> {
        if let Some(f) = Format::standard(text) {
            return Ok(f);
        }
        if text.chars().all(|c| c.is_ascii_alphanumeric()) && !text.contains(['p', 'P']) {
            return Err(FormatError::UnknownName(text.to_string()));
        }
        Format::parse_card_format(text)
    }

    /// Parses a server `CardFormat` string strictly (see the module docs).
    pub fn parse_card_format(card_format: &str) -> Result<Format, FormatError> {
        let text = card_format.trim();
        let (layout, parity) = match text.split_once(':') {
            Some((l, p)) => (l.trim(), Some(p.trim())),
            None => (text, None),
        };
        if layout.is_empty() {
            return Err(FormatError::Empty);
        }
        let roles = layout
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                'p' => Ok(BitRole::Parity),
                'c' => Ok(BitRole::Card),
                's' | 'f' => Ok(BitRole::Site),
                'm' | 'x' | '-' => Ok(BitRole::Ignore),
                other => Err(FormatError::BadLayoutChar(other)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = roles.len();
        if n > MAX_FRAME_BITS {
            return Err(FormatError::TooLong(n));
        }
        check_field_widths(&roles)?;

        let mut checks = Vec::new();
        if let Some(parity) = parity {
            let groups = parity
                .chars()
                .map(|c| match c.to_ascii_lowercase() {
                    'e' => Ok((true, false)),
                    'o' => Ok((false, true)),
                    'b' => Ok((true, true)),
                    'x' | '-' => Ok((false, false)),
                    other => Err(FormatError::BadParityChar(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if groups.len() != n {
                return Err(FormatError::LengthMismatch {
                    layout: n,
                    parity: groups.len(),
                });
            }
            let mut even_mask = 0u128;
            let mut odd_mask = 0u128;
            for (i, (e, o)) in groups.iter().enumerate() {
                if *e {
                    even_mask |= 1 << i;
                }
                if *o {
                    odd_mask |= 1 << i;
                }
            }
            let mut even_bits = Vec::new();
            let mut odd_bits = Vec::new();
            for (i, role) in roles.iter().enumerate() {
                if *role != BitRole::Parity {
                    continue;
                }
                match groups[i] {
                    (true, false) => even_bits.push(i),
                    (false, true) => odd_bits.push(i),
                    _ => return Err(FormatError::ParityBitUnassigned(i)),
                }
            }
            for (mask, bits, odd, name) in [
                (even_mask, even_bits, false, "even"),
                (odd_mask, odd_bits, true, "odd"),
            ] {
                if mask == 0 && bits.is_empty() {
                    continue;
                }
                if bits.len() != 1 {
                    return Err(FormatError::ParityGroupBits(name, bits.len()));
                }
                checks.push(ParityCheck {
                    odd,
                    parity_bit: bits[0],
                    mask,
                });
            }
        }
        Ok(Format {
            name: text.to_string(),
            roles,
            checks,
            site_code: None,
        })
    }

    /// A `WGFormat` / `DefaultWGFormat` record (spec 12.1.1.22–23).
    ///
    /// `CardBit` is authoritative: when the CardFormat string parses and has `CardBit` bits
    /// it is used as is. When it does not (the spec's own example has a 23-bit layout and a
    /// 28-bit parity part for `CardBit=26`) and its layout is `p`, then site/card bits, then
    /// `p`, the format is rebuilt at `CardBit` bits keeping the number of site bits, with an
    /// even group over the first half and an odd group over the second half (the standard
    /// Wiegand parity). Anything else is an error.
    pub fn from_server_record(
        card_bit: usize,
        site_code: u32,
        name: &str,
        card_format: &str,
    ) -> Result<Format, FormatError> {
        let mut format = match Format::parse_card_format(card_format) {
            Ok(f) if f.len() == card_bit => f,
            strict => {
                let layout = card_format.split(':').next().unwrap_or("").trim();
                let inner = layout
                    .strip_prefix(['p', 'P'])
                    .and_then(|l| l.strip_suffix(['p', 'P']));
                match inner {
                    Some(inner)
                        if (4..=MAX_FRAME_BITS).contains(&card_bit)
                            && inner
                                .chars()
                                .all(|c| matches!(c.to_ascii_lowercase(), 'c' | 's' | 'f')) =>
                    {
                        let site = inner
                            .chars()
                            .filter(|c| matches!(c.to_ascii_lowercase(), 's' | 'f'))
                            .count();
                        let data = card_bit - 2;
                        if site > data {
                            return Err(FormatError::FieldTooWide {
                                field: "site",
                                bits: site,
                                max: data,
                            });
                        }
                        let layout = format!("p{}{}p", "s".repeat(site), "c".repeat(data - site));
                        let half = card_bit / 2;
                        let parity = format!("{}{}", "e".repeat(half), "o".repeat(card_bit - half));
                        log::warn!(
                            "Wiegand format `{name}`: CardFormat `{card_format}` does not have CardBit={card_bit} bits; using `{layout}:{parity}`"
                        );
                        Format::parse_card_format(&format!("{layout}:{parity}"))?
                    }
                    _ => {
                        strict?;
                        return Err(FormatError::LengthMismatch {
                            layout: layout.chars().count(),
                            parity: card_bit,
                        });
                    }
                }
            }
        };
        if !name.trim().is_empty() {
            format.name = name.trim().to_string();
        }
        format.site_code = Some(site_code);
        Ok(format)
    }

    /// True when every parity group has the right count of ones.
    pub fn parity_ok(&self, bits: &WiegandBits) -> bool {
        self.checks.iter().all(|c| {
            let ones = (0..bits.len())
                .filter(|i| (c.mask >> i) & 1 == 1 && bits.get(*i))
                .count();
            (ones % 2 == 1) == c.odd
        })
    }

    /// (site, card) read MSB first from their positions.
    fn fields(&self, bits: &WiegandBits) -> (u64, u64) {
        let mut site = 0u64;
        let mut card = 0u64;
        for (i, role) in self.roles.iter().enumerate() {
            let b = u64::from(bits.get(i));
            match role {
                BitRole::Site => site = (site << 1) | b,
                BitRole::Card => card = (card << 1) | b,
                _ => {}
            }
        }
        (site, card)
    }

    /// The frame a reader of this format sends for `number` (and `site`; for formats with
    /// site bits, `None` means 0; a nonzero site for a format without site bits is an
    /// error), parity bits computed.
    pub fn encode(&self, number: u64, site: Option<u32>) -> Result<WiegandBits, FormatError> {
        let card_bits = self.card_bits();
        let site_bits = self.site_bits();
        if number > low_mask(card_bits) {
            return Err(FormatError::ValueTooLarge {
                field: "card",
                value: number,
                bits: card_bits,
            });
        }
        if site_bits == 0 && site.is_some_and(|s| s != 0) {
            return Err(FormatError::NoSiteBits(self.name.clone()));
        }
        let site = u64::from(site.unwrap_or(0));
        if site_bits > 0 && site > low_mask(site_bits) {
            return Err(FormatError::ValueTooLarge {
                field: "site",
                value: site,
                bits: site_bits,
            });
        }
        let mut bits = WiegandBits::from_bools(&vec![false; self.len()]);
        let (mut ci, mut si) = (card_bits, site_bits);
        for (i, role) in self.roles.iter().enumerate() {
            match role {
                BitRole::Card => {
                    ci -= 1;
                    bits.set(i, (number >> ci) & 1 == 1);
                }
                BitRole::Site => {
                    si -= 1;
                    bits.set(i, (site >> si) & 1 == 1);
                }
                _ => {}
            }
        }
        // A parity bit may sit inside another group (Corporate 1000's overall parity covers
        // the two others): recompute until nothing changes.
        for _ in 0..=self.checks.len() {
            let mut changed = false;
            for c in &self.checks {
                let ones = (0..bits.len())
                    .filter(|i| *i != c.parity_bit && (c.mask >> i) & 1 == 1 && bits.get(*i))
                    .count();
                let want = (ones % 2 == 0) == c.odd;
                if bits.get(c.parity_bit) != want {
                    bits.set(c.parity_bit, want);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(bits)
    }
}

fn check_field_widths(roles: &[BitRole]) -> Result<(), FormatError> {
    let card = roles.iter().filter(|r| **r == BitRole::Card).count();
    let site = roles.iter().filter(|r| **r == BitRole::Site).count();
    if card > 64 {
        return Err(FormatError::FieldTooWide {
            field: "card",
            bits: card,
            max: 64,
        });
    }
    if site > 32 {
        return Err(FormatError::FieldTooWide {
            field: "site",
            bits: site,
            max: 32,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(d: Decoded) -> (u64, Option<u32>, String) {
        match d {
            Decoded::Card {
                number,
                site_code,
                format,
            } => (number, site_code, format),
            other => panic!("expected a card, got {other:?}"),
        }
    }

    #[test]
    fn h10301_known_vector() {
        // Facility 1, card 1: data 00000001 0000000000000001; the first 12 data bits hold one
        // 1, so the even parity bit is 1; the last 12 hold one 1, so the odd parity bit is 0.
        // H10301 is ZK's Wiegand26a (8-bit site + 16-bit card).
        let f = Format::standard("h10301").unwrap();
        let bits = f.encode(1, Some(1)).unwrap();
        assert_eq!(bits.to_string(), "10000000100000000000000010");
        let (n, s, name) = card(decode_bits(&bits, &FormatTable::single(f)));
        assert_eq!((n, s, name.as_str()), (1, Some(1), "wiegand26a"));
        // ZK's Wiegand26 reads the same 24 data bits as one card number.
        let (n, s, name) = card(decode_bits(&bits, &FormatTable::standard()));
        assert_eq!((n, s, name.as_str()), (65_537, None, "wiegand26"));
    }

    #[test]
    fn every_standard_format_round_trips_and_catches_single_bit_errors() {
        // Every built-in format, each in a table of its own (26 and 26a, for one, share
        // their parity, so a shared table would always answer with the first).
        for f in super::super::named::NAMES
            .split(", ")
            .filter_map(Format::standard)
        {
            let table = FormatTable::single(f.clone());
            let max_card = low_mask(f.card_bits());
            let max_site = u32::try_from(low_mask(f.site_bits()).min(u64::from(u32::MAX))).unwrap();
            for (number, site) in [
                (0, 0),
                (1, 1),
                (max_card, max_site),
                (12345 & max_card, 77 & max_site),
            ] {
                let site = (f.site_bits() > 0).then_some(site);
                let bits = f.encode(number, site).unwrap();
                assert_eq!(bits.len(), f.len());
                assert!(f.parity_ok(&bits), "{}", f.name);
                let (n, s, name) = card(decode_bits(&bits, &table));
                assert_eq!(name, f.name);
                assert_eq!(n, number, "{}", f.name);
                assert_eq!(s, site, "{}", f.name);
                // Flipping any single covered bit must fail parity.
                for i in 0..bits.len() {
                    let covered = f.checks.iter().any(|c| (c.mask >> i) & 1 == 1);
                    if !covered {
                        continue;
                    }
                    let mut bad = bits;
                    bad.set(i, !bad.get(i));
                    assert_eq!(
                        decode_bits(&bad, &table),
                        Decoded::BadFormat {
                            bits: bad,
                            reason: BadFormatReason::Parity
                        },
                        "{} bit {i}",
                        f.name
                    );
                }
            }
        }
    }

    #[test]
    fn parity_check_can_be_disabled() {
        let f = Format::standard("wiegand34a").unwrap();
        let mut bits = f.encode(4242, Some(9)).unwrap();
        bits.set(0, !bits.get(0));
        let mut table = FormatTable::single(f.clone());
        assert!(matches!(
            decode_bits(&bits, &table),
            Decoded::BadFormat {
                reason: BadFormatReason::Parity,
                ..
            }
        ));
        table.parity_check = false;
        assert_eq!(card(decode_bits(&bits, &table)).0, 4242);
    }

    #[test]
    fn unknown_lengths_and_overflow_are_bad_format() {
        let bits = WiegandBits::from_bit_str("10110").unwrap();
        assert_eq!(
            decode_bits(&bits, &FormatTable::standard()),
            Decoded::BadFormat {
                bits,
                reason: BadFormatReason::UnknownLength
            }
        );
        let mut long = WiegandBits::new();
        for i in 0..200 {
            long.push(i % 3 == 0);
        }
        assert!(long.overflow());
        assert!(matches!(
            decode_bits(&long, &FormatTable::standard()),
            Decoded::BadFormat {
                reason: BadFormatReason::Overflow,
                ..
            }
        ));
    }

    #[test]
    fn every_reversal_type() {
        // A 24-bit card-only format, so the byte swap covers whole bytes.
        let number = 0x12_34_56u64;
        let f24 =
            Format::parse_card_format("pccccccccccccccccccccccccp:eeeeeeeeeeeeeooooooooooooo")
                .unwrap();
        let mut table = FormatTable::single(f24.clone());
        let cases = [
            (ReversalType::None, f24.encode(number, None).unwrap()),
            (
                ReversalType::InvertAllBits,
                f24.encode(number, None).unwrap().inverted(),
            ),
            (
                ReversalType::InvertCardBits,
                f24.encode(!number & 0xff_ffff, None).unwrap(),
            ),
            (
                ReversalType::ByteSwap,
                f24.encode(0x56_34_12, None).unwrap(),
            ),
            (
                ReversalType::BitMirror,
                f24.encode(0x6a_2c_48, None).unwrap(),
            ),
        ];
        for (reversal, bits) in cases {
            assert_eq!(ReversalType::from_code(reversal.code()), Some(reversal));
            table.reversal = reversal;
            assert_eq!(card(decode_bits(&bits, &table)).0, number, "{reversal:?}");
            if reversal != ReversalType::None {
                table.reversal = ReversalType::None;
                let plain = decode_bits(&bits, &table);
                assert_ne!(
                    plain,
                    Decoded::Card {
                        number,
                        site_code: None,
                        format: f24.name.clone()
                    },
                    "{reversal:?} must change the outcome"
                );
            }
        }
        // The transforms are their own inverses.
        for r in [
            ReversalType::InvertCardBits,
            ReversalType::ByteSwap,
            ReversalType::BitMirror,
        ] {
            assert_eq!(r.apply_to_card(r.apply_to_card(number, 24), 24), number);
        }
        assert_eq!(ReversalType::from_code(9), None);
    }

    #[test]
    fn spec_card_format_strings() {
        // Spec 12.1.1.22/23 example, verbatim: 23-bit layout, 28-bit parity, CardBit=26.
        let spec = "pcccccccccccccccccccccp:eeeeeeeeeeeeeeeeoooooooooooo";
        assert_eq!(
            Format::parse_card_format(spec),
            Err(FormatError::LengthMismatch {
                layout: 23,
                parity: 28
            })
        );
        let f = Format::from_server_record(26, 0, "Wiegand 26", spec).unwrap();
        assert_eq!((f.len(), f.card_bits(), f.site_bits()), (26, 24, 0));
        assert_eq!(f.name, "Wiegand 26");
        let bits = f.encode(0xabcdef, None).unwrap();
        // Standard parity: the frame of ZK's Wiegand26 for 0xabcdef, which is the 26a (H10301)
        // frame of facility 0xab, card 0xcdef.
        assert_eq!(
            bits,
            Format::standard("26")
                .unwrap()
                .encode(0xabcdef, None)
                .unwrap()
        );
        assert_eq!(
            bits,
            Format::standard("26a")
                .unwrap()
                .encode(0xcdef, Some(0xab))
                .unwrap()
        );
        let table = FormatTable::single(f.clone());
        assert_eq!(
            card(decode_bits(&bits, &table)),
            (0xabcdef, None, "Wiegand 26".into())
        );

        // A well-formed record is taken as is, and its SiteCode constrains the card.
        let good = "pssssssssccccccccccccccccp:eeeeeeeeeeeeeooooooooooooo";
        let f = Format::from_server_record(26, 12, "site 12", good).unwrap();
        let table = FormatTable::single(f.clone());
        assert_eq!(
            card(decode_bits(&f.encode(5, Some(12)).unwrap(), &table)).1,
            Some(12)
        );
        assert!(matches!(
            decode_bits(&f.encode(5, Some(13)).unwrap(), &table),
            Decoded::BadFormat {
                reason: BadFormatReason::SiteCode,
                ..
            }
        ));
        // SiteCode on a format without site bits is reported with the card.
        let f = Format::from_server_record(26, 7, "", spec).unwrap();
        assert_eq!(
            card(decode_bits(
                &f.encode(9, None).unwrap(),
                &FormatTable::single(f)
            ))
            .1,
            Some(7)
        );

        // Records that cannot be repaired are errors, not guesses.
        assert!(Format::from_server_record(26, 0, "x", "pccmp:eeoo").is_err());
        assert!(Format::parse_card_format("pcc:eeq").is_err());
        assert!(Format::parse_card_format("pccp:eeee").is_err()); // even group owns two p's
        assert_eq!(Format::parse_card_format(""), Err(FormatError::Empty));
        // Case and an absent parity part are accepted.
        let f = Format::parse_card_format("PCCCCCCCCP").unwrap();
        assert!(f.checks.is_empty());
        assert_eq!(f.card_bits(), 8);
    }

    #[test]
    fn keypad_codes() {
        let table = FormatTable::standard();
        for (k, eight) in [
            ('1', false),
            ('0', true),
            ('*', false),
            ('#', true),
            ('C', true),
        ] {
            let bits = keypad_frame(k, eight).unwrap();
            assert_eq!(decode_bits(&bits, &table), Decoded::Keys(k.to_string()));
        }
        // 8-bit code whose top nibble is not the complement: a bad frame.
        let bad = WiegandBits::from_bit_str("00000001").unwrap();
        assert!(matches!(
            decode_bits(&bad, &table),
            Decoded::BadFormat { .. }
        ));
        assert_eq!(keypad_frame('1', true).unwrap().to_string(), "11100001");
        assert!(keypad_frame('z', false).is_none());
    }

    #[test]
    fn encode_rejects_values_that_do_not_fit() {
        let f = Format::standard("26a").unwrap();
        assert_eq!(
            f.encode(1 << 16, Some(0)).unwrap_err().kind(),
            FormatErrorKind::Range
        );
        assert!(f.encode(1, Some(256)).is_err());
        assert!(Format::by_name_or_card_format("wiegand99").is_err());
    }
}
