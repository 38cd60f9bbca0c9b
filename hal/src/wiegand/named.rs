//! The built-in Wiegand formats, by the names ZKTeco gives them, plus a few HID layouts
//! under their HID names.
//!
//! # ZKTeco's names
//!
//! ZKTeco's device manuals (MiniAC Plus, KF1000, RevFace15, SC800, PA22 user manuals,
//! "Definitions of various common Wiegand formats") print each format as one letter per bit
//! in arrival order: `E` even parity, `O` odd parity, `C` card number, `S` site code, `F`
//! facility/device code, `M` manufacturer code. The leading parity bit covers the first
//! half of the frame and the trailing one the rest (the manuals' prose gives the ranges,
//! e.g. "the 1st bit is the even parity bit of the 2nd to 13th bits"):
//!
//! | name | layout | leading group |
//! |---|---|---|
//! | `wiegand26` (default) | `ECCCCCCCCCCCCCCCCCCCCCCCCO` (24 card bits) | bits 1-13 |
//! | `wiegand26a` | `ESSSSSSSSCCCCCCCCCCCCCCCCO` (8 site + 16 card, = HID H10301) | 1-13 |
//! | `wiegand34` | `E` + 32 `C` + `O` | 1-17 |
//! | `wiegand34a` | `E` + 8 `S` + 24 `C` + `O` | 1-17 |
//! | `wiegand36` | `O` + 16 `F` + 16 `C` + `MM` + `E` | 1-18 |
//! | `wiegand36a` | `E` + 18 `F` + 16 `C` + `O` | 1-18 |
//! | `wiegand37` | `O` + 4 `M` + 12 `S` + 19 `C` + `E` | 1-18 |
//! | `wiegand37a` | `E` + 3 `M` + 10 `F` + 6 `S` + 16 `C` + `O` | 1-18 |
//! | `wiegand50` | `E` + 16 `S` + 32 `C` + `O` | 1-25 |
//!
//! Where the manuals' prose and their letter layout disagree (the 34-bit entries say "the
//! 2nd to 25th bits are the card numbers" under a layout with 32 card letters; 37 says the
//! card is "the 21st to 36th bits" under 19 card letters) the layout is followed: it is the
//! one that adds up to the frame length, and the prose is visibly copied from the 26-bit
//! entries.
//!
//! `F` is the site code of a format that has no `S` bits (36, 36a); in 37a, which has both,
//! the six `S` bits are the site code and the ten `F` bits are not read (like `M`).
//!
//! # HID names
//!
//! `h10301` is the same layout as `wiegand26a`; `h10306` (34 bits, 16 site + 16 card),
//! `h10304` (37 bits, 16 site + 19 card), `c15001` (36 bits, Keyscan) and `wiegand35` /
//! `corporate1000` (HID Corporate 1000) keep their HID layouts.
//!
//! # Card numbers and site codes
//!
//! A format's card bits alone are the card number that is compared with a user's `CardNo`;
//! the site code is reported beside it (rtlog `sitecode`, spec 10.2) and restricts the
//! match only when the format defines a nonzero `SiteCode` (server WGFormat records, spec
//! 12.1.1.22-23). So a reader sending 123456 as 24 bits matches `CardNo=123456` with
//! `wiegand26`, and matches `CardNo=57920` (site 1) with `wiegand26a`, never 123456: the
//! spec's data model keeps `cardno` and `sitecode` apart, and trying `site*65536+card` as
//! well would let one card match two people.

use super::format::{BitRole, Format, ParityCheck};

/// A ZKTeco format: its name, its manual's letter layout, and how many bits (from the
/// first) the leading parity bit covers.
struct ZkFormat {
    name: &'static str,
    layout: &'static str,
    lead_bits: usize,
}

const ZK_FORMATS: [ZkFormat; 9] = [
    ZkFormat {
        name: "wiegand26",
        layout: "ECCCCCCCCCCCCCCCCCCCCCCCCO",
        lead_bits: 13,
    },
    ZkFormat {
        name: "wiegand26a",
        layout: "ESSSSSSSSCCCCCCCCCCCCCCCCO",
        lead_bits: 13,
    },
    ZkFormat {
        name: "wiegand34",
        layout: "ECCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO",
        lead_bits: 17,
    },
    ZkFormat {
        name: "wiegand34a",
        layout: "ESSSSSSSSCCCCCCCCCCCCCCCCCCCCCCCCO",
        lead_bits: 17,
    },
    ZkFormat {
        name: "wiegand36",
        layout: "OFFFFFFFFFFFFFFFFCCCCCCCCCCCCCCCCMME",
        lead_bits: 18,
    },
    ZkFormat {
        name: "wiegand36a",
        layout: "EFFFFFFFFFFFFFFFFFFCCCCCCCCCCCCCCCCO",
        lead_bits: 18,
    },
    ZkFormat {
        name: "wiegand37",
        layout: "OMMMMSSSSSSSSSSSSCCCCCCCCCCCCCCCCCCCE",
        lead_bits: 18,
    },
    ZkFormat {
        name: "wiegand37a",
        layout: "EMMMFFFFFFFFFFSSSSSSCCCCCCCCCCCCCCCCO",
        lead_bits: 18,
    },
    ZkFormat {
        name: "wiegand50",
        layout: "ESSSSSSSSSSSSSSSSCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO",
        lead_bits: 25,
    },
];

/// HID layouts in the CardFormat grammar (see [`super::format`]).
const HID_FORMATS: [(&str, &str); 3] = [
    (
        "h10306",
        "pssssssssssssssssccccccccccccccccp:eeeeeeeeeeeeeeeeeooooooooooooooooo",
    ),
    // H10304: even parity over bits 1-19, odd over 19-37; bit 19 is in both.
    (
        "h10304",
        "psssssssssssssssscccccccccccccccccccp:eeeeeeeeeeeeeeeeeeboooooooooooooooooo",
    ),
    (
        "c15001",
        "pmmmmmmmmmmssssssssccccccccccccccccp:eeeeeeeeeeeeeeeeeeoooooooooooooooooo",
    ),
];

/// Every built-in name a board file may use (aliases: the bare bit count, `26a`, ...).
pub const NAMES: &str = "wiegand26, wiegand26a, wiegand34, wiegand34a, wiegand35, wiegand36, wiegand36a, wiegand37, wiegand37a, wiegand50, h10301, h10304, h10306, c15001";

/// The formats tried when nothing else is known: one per length, ZK's plain names (and
/// HID Corporate 1000 for 35 bits, which ZK does not name).
pub fn default_formats() -> Vec<Format> {
    [
        "wiegand26",
        "wiegand34",
        "wiegand35",
        "wiegand36",
        "wiegand37",
        "wiegand50",
    ]
    .iter()
    .filter_map(|n| by_name(n))
    .collect()
}

/// A built-in format by name: case, spaces, `-` and `_` are ignored, and the `wiegand`
/// prefix may be left out (`26a`, `Wiegand 26a`, `WIEGAND-26A`).
pub fn by_name(name: &str) -> Option<Format> {
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    let key = match key.as_str() {
        "h10301" => "wiegand26a".to_string(),
        "corporate1000" | "wiegand35" | "35" => return Some(corporate_1000()),
        k if k.starts_with(|c: char| c.is_ascii_digit()) => format!("wiegand{k}"),
        k => k.to_string(),
    };
    if let Some(zk) = ZK_FORMATS.iter().find(|f| f.name == key) {
        return Some(zk_format(zk));
    }
    let (name, text) = HID_FORMATS.iter().find(|(n, _)| *n == key)?;
    let mut f = Format::parse_card_format(text).ok()?;
    f.name = (*name).to_string();
    Some(f)
}

/// A ZK layout as a [`Format`]: the first letter is the leading parity bit over
/// `lead_bits` bits, the last letter the trailing one over the rest.
fn zk_format(zk: &ZkFormat) -> Format {
    let has_site = zk.layout.contains('S');
    let roles: Vec<BitRole> = zk
        .layout
        .chars()
        .map(|c| match c {
            'E' | 'O' => BitRole::Parity,
            'C' => BitRole::Card,
            'S' => BitRole::Site,
            'F' if !has_site => BitRole::Site,
            _ => BitRole::Ignore,
        })
        .collect();
    let n = roles.len();
    let low = |bits: usize| (1u128 << bits) - 1;
    let lead_mask = low(zk.lead_bits);
    let trail_mask = low(n) & !lead_mask;
    let sense = |pos: usize| zk.layout.as_bytes()[pos] == b'O';
    Format {
        name: zk.name.to_string(),
        roles,
        checks: vec![
            ParityCheck {
                odd: sense(0),
                parity_bit: 0,
                mask: lead_mask,
            },
            ParityCheck {
                odd: sense(n - 1),
                parity_bit: n - 1,
                mask: trail_mask,
            },
        ],
        site_code: None,
    }
}

/// HID Corporate 1000 (35 bits): bit 1 odd parity over all 35 bits, bit 2 even parity over
/// bits 3-4, 6-7, ... 33-34, bit 35 odd parity over bits 2-3, 5-6, ... 32-33 (1-based);
/// 12-bit company code (our site code) in bits 3-14, 20-bit card number in bits 15-34.
fn corporate_1000() -> Format {
    let mut roles = vec![BitRole::Parity, BitRole::Parity];
    roles.extend(std::iter::repeat_n(BitRole::Site, 12));
    roles.extend(std::iter::repeat_n(BitRole::Card, 20));
    roles.push(BitRole::Parity);
    let mut even = 1u128 << 1;
    let mut odd = 1u128 << 34;
    for pos in 2..=34usize {
        let i = pos - 1;
        if pos >= 3 && pos % 3 != 2 {
            even |= 1 << i;
        }
        if pos % 3 != 1 && pos <= 33 {
            odd |= 1 << i;
        }
    }
    let all = (1u128 << 35) - 1;
    Format {
        name: "wiegand35".into(),
        roles,
        checks: vec![
            ParityCheck {
                odd: false,
                parity_bit: 1,
                mask: even,
            },
            ParityCheck {
                odd: true,
                parity_bit: 34,
                mask: odd,
            },
            ParityCheck {
                odd: true,
                parity_bit: 0,
                mask: all,
            },
        ],
        site_code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wiegand::format::{decode_bits, Decoded, FormatTable};
    use crate::wiegand::BadFormatReason;

    /// One format as ZK's manuals describe it in words, as 1-based bit ranges.
    struct Prose {
        name: &'static str,
        len: usize,
        lead_odd: bool,
        /// The leading parity bit covers bits 1..=lead_end.
        lead_end: usize,
        trail_odd: bool,
        site: std::ops::Range<usize>,
        card: std::ops::Range<usize>,
    }

    const fn prose(
        name: &'static str,
        len: usize,
        (lead_odd, lead_end, trail_odd): (bool, usize, bool),
        site: std::ops::Range<usize>,
        card: std::ops::Range<usize>,
    ) -> Prose {
        Prose {
            name,
            len,
            lead_odd,
            lead_end,
            trail_odd,
            site,
            card,
        }
    }

    /// Written from the manuals' sentences ("the 1st bit is the even parity bit of the 2nd
    /// to 13th bits ... the 2nd to 9th bits are the site codes"), not from the layout table
    /// above, so a wrong letter there fails here. Exceptions, where the sentences contradict
    /// the letters (see the module docs): the card fields of 34, 34a and 37 follow the
    /// letters.
    const ZK_PROSE: [Prose; 9] = [
        prose("wiegand26", 26, (false, 13, true), 0..0, 2..26),
        prose("wiegand26a", 26, (false, 13, true), 2..10, 10..26),
        prose("wiegand34", 34, (false, 17, true), 0..0, 2..34),
        prose("wiegand34a", 34, (false, 17, true), 2..10, 10..34),
        prose("wiegand36", 36, (true, 18, false), 2..18, 18..34),
        prose("wiegand36a", 36, (false, 18, true), 2..20, 20..36),
        prose("wiegand37", 37, (true, 18, false), 6..18, 18..37),
        prose("wiegand37a", 37, (false, 18, true), 15..21, 21..37),
        prose("wiegand50", 50, (false, 25, true), 2..18, 18..50),
    ];

    #[test]
    fn zk_formats_have_the_manuals_fields_and_parity() {
        for p in &ZK_PROSE {
            let (name, len, lead_end) = (p.name, p.len, p.lead_end);
            let (site, card) = (&p.site, &p.card);
            let f = by_name(name).unwrap();
            assert_eq!(f.name, name);
            assert_eq!(f.len(), len, "{name}");
            for pos in 1..=len {
                let role = f.roles[pos - 1];
                if site.contains(&pos) {
                    assert_eq!(role, BitRole::Site, "{name} bit {pos}");
                } else if card.contains(&pos) {
                    assert_eq!(role, BitRole::Card, "{name} bit {pos}");
                } else if pos == 1 || pos == len {
                    assert_eq!(role, BitRole::Parity, "{name} bit {pos}");
                } else {
                    assert_eq!(role, BitRole::Ignore, "{name} bit {pos}");
                }
            }
            let lead = f.checks.iter().find(|c| c.parity_bit == 0).unwrap();
            let trail = f.checks.iter().find(|c| c.parity_bit == len - 1).unwrap();
            assert_eq!(f.checks.len(), 2);
            assert_eq!((lead.odd, trail.odd), (p.lead_odd, p.trail_odd), "{name}");
            assert_eq!(lead.mask, (1u128 << lead_end) - 1, "{name}");
            assert_eq!(
                trail.mask,
                ((1u128 << len) - 1) & !((1u128 << lead_end) - 1),
                "{name}"
            );
        }
    }

    #[test]
    fn card_123456_as_wiegand26_and_as_wiegand26a() {
        // 123456 = 0x01E240. First 12 data bits 000000011110 (four ones: even parity 0),
        // last 12 bits 001001000000 (two ones: odd parity 1).
        let w26 = by_name("wiegand26").unwrap();
        let bits = w26.encode(123_456, None).unwrap();
        assert_eq!(bits.to_string(), "00000000111100010010000001");
        let table = FormatTable::standard();
        assert_eq!(
            decode_bits(&bits, &table),
            Decoded::Card {
                number: 123_456,
                site_code: None,
                format: "wiegand26".into()
            }
        );
        // The same 26 bits read as ZK's 26a: site 1, card 57920 (0xE240).
        let w26a = by_name("26a").unwrap();
        assert_eq!(w26a.encode(57_920, Some(1)).unwrap(), bits);
        assert_eq!(
            decode_bits(&bits, &FormatTable::single(w26a)),
            Decoded::Card {
                number: 57_920,
                site_code: Some(1),
                format: "wiegand26a".into()
            }
        );
        // 24 card bits: the largest 26-bit card, and one past it.
        assert!(w26.encode(0xff_ffff, None).is_ok());
        assert!(w26.encode(0x100_0000, None).is_err());
        // A site code cannot be sent with a format that has no site bits.
        assert!(w26.encode(5, Some(3)).is_err());
        assert!(w26.encode(5, Some(0)).is_ok());
    }

    #[test]
    fn names_and_aliases() {
        for (alias, name) in [
            ("26", "wiegand26"),
            ("Wiegand 26a", "wiegand26a"),
            ("WIEGAND-34A", "wiegand34a"),
            ("h10301", "wiegand26a"),
            ("37a", "wiegand37a"),
            ("50", "wiegand50"),
            ("35", "wiegand35"),
            ("corporate1000", "wiegand35"),
            ("h10306", "h10306"),
            ("h10304", "h10304"),
            ("c15001", "c15001"),
        ] {
            assert_eq!(
                by_name(alias).map(|f| f.name),
                Some(name.to_string()),
                "{alias}"
            );
        }
        for bad in ["wiegand99", "26b", "", "wiegand"] {
            assert!(by_name(bad).is_none(), "{bad}");
        }
        for name in NAMES.split(", ") {
            assert!(by_name(name).is_some(), "{name} is listed but unknown");
        }
        // The HID layouts differ from ZK's formats of the same length.
        assert_ne!(
            by_name("h10306").unwrap().roles,
            by_name("34").unwrap().roles
        );
        assert_ne!(
            by_name("h10304").unwrap().roles,
            by_name("37").unwrap().roles
        );
    }

    #[test]
    fn zk_37a_reads_its_s_bits_as_the_site_and_ignores_f() {
        let f = by_name("wiegand37a").unwrap();
        assert_eq!((f.site_bits(), f.card_bits()), (6, 16));
        // Manufacturer and facility bits set, site 45, card 4660: the F bits change nothing.
        let mut bits = f.encode(4660, Some(45)).unwrap();
        for i in 1..14 {
            bits.set(i, true);
        }
        let table = FormatTable {
            formats: vec![f],
            parity_check: false,
            reversal: Default::default(),
        };
        assert!(matches!(
            decode_bits(&bits, &table),
            Decoded::Card {
                number: 4660,
                site_code: Some(45),
                ..
            }
        ));
    }

    #[test]
    fn the_default_table_has_one_format_per_length() {
        let formats = default_formats();
        let mut lens: Vec<usize> = formats.iter().map(Format::len).collect();
        lens.dedup();
        assert_eq!(lens, vec![26, 34, 35, 36, 37, 50]);
        // A 36a frame is not silently read as 36 by the default table most of the time:
        // the two parities differ, and a frame whose parity fits neither is refused.
        let f36a = by_name("36a").unwrap();
        let bits = f36a.encode(1, Some(0)).unwrap();
        let decoded = decode_bits(&bits, &FormatTable::standard());
        assert!(
            matches!(
                decoded,
                Decoded::BadFormat {
                    reason: BadFormatReason::Parity,
                    ..
                }
            ),
            "{decoded:?}"
        );
    }
}
