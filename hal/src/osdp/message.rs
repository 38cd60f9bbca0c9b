//! OSDP commands and replies: typed values to and from a packet's code and data bytes.
//!
//! Layouts follow SIA OSDP 2.2 / IEC 60839-11-5 (multi-byte numbers little end first).
//! Only what a door controller's control panel needs is typed; any other reply is kept as
//! [`Reply::Other`], never an error.

use crate::wiegand::WiegandBits;

/// Command codes (CP → PD).
pub mod command {
    pub const POLL: u8 = 0x60;
    pub const ID: u8 = 0x61;
    pub const CAP: u8 = 0x62;
    pub const LSTAT: u8 = 0x64;
    pub const LED: u8 = 0x69;
    pub const BUZ: u8 = 0x6A;
    pub const KEYSET: u8 = 0x75;
    pub const CHLNG: u8 = 0x76;
    pub const SCRYPT: u8 = 0x77;
}

/// Reply codes (PD → CP).
pub mod reply {
    pub const ACK: u8 = 0x40;
    pub const NAK: u8 = 0x41;
    pub const PDID: u8 = 0x45;
    pub const PDCAP: u8 = 0x46;
    pub const LSTATR: u8 = 0x48;
    pub const RAW: u8 = 0x50;
    pub const FMT: u8 = 0x51;
    pub const KEYPAD: u8 = 0x53;
    pub const CCRYPT: u8 = 0x76;
    pub const RMAC_I: u8 = 0x78;
    pub const BUSY: u8 = 0x79;
}

/// osdp_NAK error codes.
pub mod nak {
    pub const CHECK_CHARACTER: u8 = 1;
    pub const COMMAND_LENGTH: u8 = 2;
    pub const UNKNOWN_COMMAND: u8 = 3;
    pub const SEQUENCE: u8 = 4;
    pub const SECURITY_UNSUPPORTED: u8 = 5;
    pub const SECURITY_CONDITIONS: u8 = 6;
}

/// osdp_PDCAP function codes lintel looks at.
pub mod capability {
    pub const LED_CONTROL: u8 = 4;
    pub const AUDIBLE_OUTPUT: u8 = 5;
    pub const CHECK_CHARACTER: u8 = 8;
    pub const COMMUNICATION_SECURITY: u8 = 9;
}

/// The keypad bytes of osdp_KEYPAD for the two non-digit keys.
const KEY_STAR: u8 = 0x7F;
const KEY_HASH: u8 = 0x0D;

/// A reply whose data does not fit its code's layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reply {code:#04x}: {len} data bytes do not fit its layout")]
pub struct MessageError {
    pub code: u8,
    pub len: usize,
}

/// LED colours of osdp_LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedColor {
    #[default]
    Off = 0,
    Red = 1,
    Green = 2,
    Amber = 3,
    Blue = 4,
    Magenta = 5,
    Cyan = 6,
    White = 7,
}

/// An LED blinking between two colours (times in 100 ms units). `steady` keeps one colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedPattern {
    pub on_color: LedColor,
    pub off_color: LedColor,
    pub on_100ms: u8,
    pub off_100ms: u8,
}

impl LedPattern {
    /// One colour, not blinking.
    pub fn steady(color: LedColor) -> LedPattern {
        LedPattern {
            on_color: color,
            off_color: color,
            on_100ms: 1,
            off_100ms: 0,
        }
    }
}

/// A pattern shown for a while, after which the LED returns to its permanent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedFlash {
    pub pattern: LedPattern,
    pub duration_100ms: u16,
}

/// One osdp_LED record for a reader's LED `led` (0 = its first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedCommand {
    pub led: u8,
    /// Shown now for its duration; `None` leaves any running one alone.
    pub temporary: Option<LedFlash>,
    /// The state the LED rests in; `None` leaves it as it is.
    pub permanent: Option<LedPattern>,
}

/// Tone of osdp_BUZ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuzzerTone {
    Off = 1,
    Default = 2,
}

/// One osdp_BUZ record: `count` beeps of `on_100ms`, `off_100ms` apart (0 = until the
/// next command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuzzerCommand {
    pub tone: BuzzerTone,
    pub on_100ms: u8,
    pub off_100ms: u8,
    pub count: u8,
}

/// A command lintel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Poll,
    Id,
    Capabilities,
    LocalStatus,
    Led(LedCommand),
    Buzzer(BuzzerCommand),
    /// osdp_KEYSET with a new SCBK (sent only inside a Secure Channel).
    KeySet([u8; 16]),
    /// osdp_CHLNG with RND.A.
    Challenge([u8; 8]),
    /// osdp_SCRYPT with the server cryptogram.
    ServerCryptogram([u8; 16]),
}

fn pattern_bytes(out: &mut Vec<u8>, p: &LedPattern) {
    out.extend_from_slice(&[p.on_100ms, p.off_100ms, p.on_color as u8, p.off_color as u8]);
}

impl Command {
    pub fn code(&self) -> u8 {
        match self {
            Command::Poll => command::POLL,
            Command::Id => command::ID,
            Command::Capabilities => command::CAP,
            Command::LocalStatus => command::LSTAT,
            Command::Led(_) => command::LED,
            Command::Buzzer(_) => command::BUZ,
            Command::KeySet(_) => command::KEYSET,
            Command::Challenge(_) => command::CHLNG,
            Command::ServerCryptogram(_) => command::SCRYPT,
        }
    }

    /// The data bytes (before any encryption).
    pub fn data(&self) -> Vec<u8> {
        match self {
            Command::Poll | Command::LocalStatus => Vec::new(),
            // Reply type 0: the standard report.
            Command::Id | Command::Capabilities => vec![0],
            Command::Led(c) => {
                // Reader 0: the PD's own reader (lintel gives each PD one reader number).
                let mut d = vec![0, c.led];
                match &c.temporary {
                    Some(f) => {
                        d.push(2); // set the temporary state and start its timer
                        pattern_bytes(&mut d, &f.pattern);
                        d.extend_from_slice(&f.duration_100ms.to_le_bytes());
                    }
                    None => d.extend_from_slice(&[0; 7]), // no operation
                }
                match &c.permanent {
                    Some(p) => {
                        d.push(1); // set the permanent state
                        pattern_bytes(&mut d, p);
                    }
                    None => d.extend_from_slice(&[0; 5]),
                }
                d
            }
            Command::Buzzer(b) => vec![0, b.tone as u8, b.on_100ms, b.off_100ms, b.count],
            Command::KeySet(key) => {
                // Key type 1: the Secure Channel base key, 16 bytes.
                let mut d = vec![1, 16];
                d.extend_from_slice(key);
                d
            }
            Command::Challenge(rnd) => rnd.to_vec(),
            Command::ServerCryptogram(c) => c.to_vec(),
        }
    }

    /// Name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Poll => "osdp_POLL",
            Command::Id => "osdp_ID",
            Command::Capabilities => "osdp_CAP",
            Command::LocalStatus => "osdp_LSTAT",
            Command::Led(_) => "osdp_LED",
            Command::Buzzer(_) => "osdp_BUZ",
            Command::KeySet(_) => "osdp_KEYSET",
            Command::Challenge(_) => "osdp_CHLNG",
            Command::ServerCryptogram(_) => "osdp_SCRYPT",
        }
    }
}

/// What osdp_PDID says about the peripheral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdIdentity {
    /// IEEE OUI of the vendor.
    pub vendor: [u8; 3],
    pub model: u8,
    pub version: u8,
    pub serial: u32,
    pub firmware: [u8; 3],
}

/// One osdp_PDCAP entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub function: u8,
    pub compliance: u8,
    pub count: u8,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Nak(u8),
    Identity(PdIdentity),
    Capabilities(Vec<Capability>),
    LocalStatus {
        tamper: bool,
        power_failure: bool,
    },
    /// osdp_RAW: card bits, first bit first; `wiegand_format` when the PD says the bits
    /// are a Wiegand frame with its parity (format code 1) rather than unspecified (0).
    RawCard {
        bits: WiegandBits,
        wiegand_format: bool,
    },
    /// osdp_FMT: card data as characters.
    FormattedCard {
        text: String,
    },
    /// osdp_KEYPAD, keys as '0'-'9', '*', '#'.
    Keypad {
        keys: String,
    },
    ClientCryptogram {
        client_uid: [u8; 8],
        rnd_b: [u8; 8],
        cryptogram: [u8; 16],
    },
    InitialRmac([u8; 16]),
    Busy,
    Other {
        code: u8,
        data: Vec<u8>,
    },
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Maps an osdp_KEYPAD byte to a key ('*' and '#' also as their ASCII codes, which some
/// readers send).
pub fn key_of(byte: u8) -> Option<char> {
    match byte {
        b'0'..=b'9' => Some(char::from(byte)),
        KEY_STAR | b'*' => Some('*'),
        KEY_HASH | b'#' => Some('#'),
        _ => None,
    }
}

/// The osdp_KEYPAD byte of a key.
pub fn byte_of_key(key: char) -> Option<u8> {
    match key {
        '0'..='9' => u8::try_from(key).ok(),
        '*' => Some(KEY_STAR),
        '#' => Some(KEY_HASH),
        _ => None,
    }
}

impl Reply {
    /// Decodes a reply's code and (decrypted) data.
    pub fn decode(code: u8, data: &[u8]) -> Result<Reply, MessageError> {
        let bad = || MessageError {
            code,
            len: data.len(),
        };
        let need = |n: usize| if data.len() >= n { Ok(()) } else { Err(bad()) };
        Ok(match code {
            reply::ACK => Reply::Ack,
            reply::BUSY => Reply::Busy,
            reply::NAK => {
                need(1)?;
                Reply::Nak(data[0])
            }
            reply::PDID => {
                need(12)?;
                Reply::Identity(PdIdentity {
                    vendor: array(&data[0..3]),
                    model: data[3],
                    version: data[4],
                    serial: u32::from_le_bytes(array(&data[5..9])),
                    firmware: array(&data[9..12]),
                })
            }
            reply::PDCAP => {
                if data.len() % 3 != 0 {
                    return Err(bad());
                }
                Reply::Capabilities(
                    data.chunks(3)
                        .map(|c| Capability {
                            function: c[0],
                            compliance: c[1],
                            count: c[2],
                        })
                        .collect(),
                )
            }
            reply::LSTATR => {
                need(2)?;
                Reply::LocalStatus {
                    tamper: data[0] != 0,
                    power_failure: data[1] != 0,
                }
            }
            reply::RAW => {
                // Reader number (ignored: each PD is one lintel reader), format, bit count.
                need(4)?;
                let count = usize::from(u16::from_le_bytes([data[2], data[3]]));
                let bytes = count.div_ceil(8);
                if count == 0 || data.len() < 4 + bytes {
                    return Err(bad());
                }
                let mut bits = WiegandBits::new();
                for i in 0..count {
                    bits.push(data[4 + i / 8] & (0x80 >> (i % 8)) != 0);
                }
                Reply::RawCard {
                    bits,
                    wiegand_format: data[1] == 1,
                }
            }
            reply::FMT => {
                // Reader number, read direction, character count, characters. The
                // direction only matters to magnetic-stripe data read backwards, which
                // the PD has already put in order for a card number; it is ignored.
                need(3)?;
                let n = usize::from(data[2]);
                if data.len() < 3 + n {
                    return Err(bad());
                }
                Reply::FormattedCard {
                    text: data[3..3 + n].iter().map(|&b| char::from(b)).collect(),
                }
            }
            reply::KEYPAD => {
                need(2)?;
                let n = usize::from(data[1]);
                if data.len() < 2 + n {
                    return Err(bad());
                }
                Reply::Keypad {
                    keys: data[2..2 + n].iter().filter_map(|&b| key_of(b)).collect(),
                }
            }
            reply::CCRYPT => {
                need(32)?;
                Reply::ClientCryptogram {
                    client_uid: array(&data[0..8]),
                    rnd_b: array(&data[8..16]),
                    cryptogram: array(&data[16..32]),
                }
            }
            reply::RMAC_I => {
                need(16)?;
                Reply::InitialRmac(array(&data[0..16]))
            }
            other => Reply::Other {
                code: other,
                data: data.to_vec(),
            },
        })
    }

    /// Whether the reply carries card or keypad data (which a keyed reader may only send
    /// encrypted).
    pub fn is_credential(&self) -> bool {
        matches!(
            self,
            Reply::RawCard { .. } | Reply::FormattedCard { .. } | Reply::Keypad { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn led_record_layout() {
        let c = Command::Led(LedCommand {
            led: 0,
            temporary: Some(LedFlash {
                pattern: LedPattern {
                    on_color: LedColor::Green,
                    off_color: LedColor::Off,
                    on_100ms: 5,
                    off_100ms: 5,
                },
                duration_100ms: 0x0102,
            }),
            permanent: Some(LedPattern::steady(LedColor::Red)),
        });
        assert_eq!(c.code(), 0x69);
        assert_eq!(
            c.data(),
            vec![0, 0, 2, 5, 5, 2, 0, 0x02, 0x01, 1, 1, 0, 1, 1]
        );
        let none = Command::Led(LedCommand::default()).data();
        assert_eq!(none, vec![0; 14]);
    }

    #[test]
    fn buzzer_and_keyset_layouts() {
        let b = Command::Buzzer(BuzzerCommand {
            tone: BuzzerTone::Default,
            on_100ms: 2,
            off_100ms: 1,
            count: 3,
        });
        assert_eq!((b.code(), b.data()), (0x6A, vec![0, 2, 2, 1, 3]));
        let k = Command::KeySet([7; 16]).data();
        assert_eq!(&k[..2], &[1, 16]);
        assert_eq!(k.len(), 18);
        assert_eq!(Command::Id.data(), vec![0]);
        assert!(Command::Poll.data().is_empty());
    }

    #[test]
    fn raw_bits_are_msb_first() {
        // 26 bits: 1 then 24 zeros then 1.
        let data = [0, 1, 26, 0, 0x80, 0, 0, 0x40];
        match Reply::decode(reply::RAW, &data).unwrap() {
            Reply::RawCard {
                bits,
                wiegand_format,
            } => {
                assert!(wiegand_format);
                assert_eq!(bits.len(), 26);
                assert_eq!(bits.to_string(), format!("1{}1", "0".repeat(24)));
            }
            other => panic!("{other:?}"),
        }
        assert!(Reply::decode(reply::RAW, &[0, 1, 26, 0, 0x80]).is_err());
        assert!(Reply::decode(reply::RAW, &[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn identity_keypad_fmt_status() {
        let id = Reply::decode(
            reply::PDID,
            &[0xBE, 0xBA, 0xFE, 1, 2, 0x78, 0x56, 0x34, 0x12, 3, 4, 5],
        )
        .unwrap();
        assert_eq!(
            id,
            Reply::Identity(PdIdentity {
                vendor: [0xBE, 0xBA, 0xFE],
                model: 1,
                version: 2,
                serial: 0x1234_5678,
                firmware: [3, 4, 5]
            })
        );
        assert_eq!(
            Reply::decode(reply::KEYPAD, &[0, 4, b'1', 0x7F, b'9', 0x0D]).unwrap(),
            Reply::Keypad {
                keys: "1*9#".into()
            }
        );
        assert_eq!(
            Reply::decode(reply::FMT, &[0, 0, 4, b'4', b'6', b'6', b'0']).unwrap(),
            Reply::FormattedCard {
                text: "4660".into()
            }
        );
        assert_eq!(
            Reply::decode(reply::LSTATR, &[1, 0]).unwrap(),
            Reply::LocalStatus {
                tamper: true,
                power_failure: false
            }
        );
        assert_eq!(
            Reply::decode(reply::PDCAP, &[9, 1, 0, 4, 1, 1]).unwrap(),
            Reply::Capabilities(vec![
                Capability {
                    function: 9,
                    compliance: 1,
                    count: 0
                },
                Capability {
                    function: 4,
                    compliance: 1,
                    count: 1
                }
            ])
        );
        assert!(Reply::decode(reply::PDCAP, &[9, 1]).is_err());
        assert_eq!(
            Reply::decode(0x90, &[1, 2]).unwrap(),
            Reply::Other {
                code: 0x90,
                data: vec![1, 2]
            }
        );
        for k in "0123456789*#".chars() {
            assert_eq!(key_of(byte_of_key(k).unwrap()), Some(k));
        }
    }
}
