//! Verification modes (Appendix 3, and the 16-bit "new" style of 7.x
//! `NewVFStyles`): which combinations of card, user ID, password and
//! biometrics open a door, pure and without SQL.
//!
//! A mode is a list of alternatives; each alternative is a set of factors
//! that must all be presented. Factors are bits at the positions of the
//! spec's `VF_TYPE_*` enum, so the same mask is the new-style string.

/// Factor bits (positions of the spec's `_VERIFY_TYPE_E`; bit 0 is the logic bit).
pub mod factor {
    pub const LOGIC_AND: u16 = 1 << 0;
    pub const FACE: u16 = 1 << 1;
    pub const PALM: u16 = 1 << 2;
    pub const FINGERPRINT: u16 = 1 << 4;
    pub const VEIN: u16 = 1 << 5;
    pub const PASSWORD: u16 = 1 << 9;
    pub const USER_ID: u16 = 1 << 10;
    pub const CARD: u16 = 1 << 11;
    /// What a Wiegand reader with a keypad can present.
    pub const AVAILABLE: u16 = CARD | USER_ID | PASSWORD;
}

use factor::*;

/// Appendix 3 code 0 ("automatically identified"): any one factor.
const AUTO: &[u16] = &[CARD, PASSWORD, FINGERPRINT, FACE, VEIN, PALM];

/// A verification mode: any one alternative, all factors of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    alternatives: Vec<u16>,
}

/// How far presented factors get in a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// An alternative is complete.
    Satisfied,
    /// An alternative holds everything presented and still needs factors
    /// this device can take (card and password: the password is missing).
    NeedMore,
    /// No alternative can be completed with what was presented (event 41).
    Wrong,
}

/// What a keypad entry means in a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeypadMeaning {
    Password,
    UserId,
    /// The mode takes nothing typed (card only, fingerprint only …).
    Nothing,
}

impl Mode {
    /// Appendix 3 code 0: any card or password (or biometric). A user ID
    /// alone is not secret, so auto mode does not open on it (mode 2 does).
    pub fn auto() -> Mode {
        Mode {
            alternatives: AUTO.to_vec(),
        }
    }

    /// An Appendix 3 code; `None` for codes the appendix does not define.
    pub fn from_code(code: i64) -> Option<Mode> {
        let alternatives: &[u16] = match code {
            0 => AUTO,
            1 => &[FINGERPRINT],
            2 => &[USER_ID],
            3 => &[PASSWORD],
            4 => &[CARD],
            5 => &[FINGERPRINT, PASSWORD],
            6 => &[FINGERPRINT, CARD],
            7 => &[CARD, PASSWORD],
            8 => &[USER_ID | FINGERPRINT],
            9 => &[FINGERPRINT | PASSWORD],
            10 => &[CARD | FINGERPRINT],
            11 => &[CARD | PASSWORD],
            12 => &[FINGERPRINT | PASSWORD | CARD],
            13 => &[USER_ID | FINGERPRINT | PASSWORD],
            14 => &[USER_ID | FINGERPRINT, CARD | FINGERPRINT],
            15 => &[FACE],
            16 => &[FACE | FINGERPRINT],
            17 => &[FACE | PASSWORD],
            18 => &[FACE | CARD],
            19 => &[FACE | FINGERPRINT | CARD],
            20 => &[FACE | FINGERPRINT | PASSWORD],
            21 => &[VEIN],
            22 => &[VEIN | PASSWORD],
            23 => &[VEIN | CARD],
            24 => &[VEIN | PASSWORD | CARD],
            _ => return None,
        };
        Some(Mode {
            alternatives: alternatives.to_vec(),
        })
    }

    /// A 16-character new-style string ("0000101000000001": bit 15 first,
    /// bit 0 the logic bit: 1 = all of the factors, 0 = any one of them).
    pub fn from_vf_string(s: &str) -> Option<Mode> {
        let s = s.trim();
        if s.len() != 16 || !s.bytes().all(|b| b == b'0' || b == b'1') {
            return None;
        }
        let bits = u16::from_str_radix(s, 2).ok()?;
        let factors = bits & !LOGIC_AND;
        if factors == 0 {
            return None;
        }
        let alternatives = if bits & LOGIC_AND != 0 {
            vec![factors]
        } else {
            (1..16)
                .map(|b| 1u16 << b)
                .filter(|b| factors & b != 0)
                .collect()
        };
        Some(Mode { alternatives })
    }

    /// A stored parameter value: a code, or with new styles a bit string.
    pub fn parse(value: &str) -> Option<Mode> {
        let v = value.trim();
        if v.len() == 16 {
            return Self::from_vf_string(v);
        }
        v.parse::<i64>().ok().and_then(Self::from_code)
    }

    pub fn check(&self, presented: u16) -> Check {
        let presented = presented & !LOGIC_AND;
        if self
            .alternatives
            .iter()
            .any(|a| *a & presented == *a && *a != 0)
        {
            return Check::Satisfied;
        }
        let can_finish =
            |a: &u16| *a & presented == presented && (*a & !presented) & !AVAILABLE == 0;
        if presented != 0 && self.alternatives.iter().any(can_finish) {
            Check::NeedMore
        } else {
            Check::Wrong
        }
    }

    /// How a keypad entry (with nothing else presented) is read.
    pub fn keypad_meaning(&self) -> KeypadMeaning {
        let takes = |f: u16| {
            self.alternatives
                .iter()
                .any(|a| *a & f != 0 && (*a & !AVAILABLE) == 0)
        };
        // A password alternative without a user ID reads the entry as the
        // password (it identifies the user); else a user ID comes first.
        if self
            .alternatives
            .iter()
            .any(|a| *a & PASSWORD != 0 && *a & USER_ID == 0 && (*a & !AVAILABLE) == 0)
        {
            KeypadMeaning::Password
        } else if takes(USER_ID) {
            KeypadMeaning::UserId
        } else {
            KeypadMeaning::Nothing
        }
    }
}

/// The rtlog `verifytype` of an identification that used `used`: the
/// Appendix 3 code of that combination (200 "other" when it has none), or
/// with new styles the 16-bit string (logic bit set for more than one factor).
pub fn verifytype(used: u16, new_style: bool) -> String {
    let used = used & !LOGIC_AND;
    if new_style {
        let bits = if used.count_ones() > 1 {
            used | LOGIC_AND
        } else {
            used
        };
        return format!("{bits:016b}");
    }
    let code = match used {
        CARD => 4,
        PASSWORD => 3,
        USER_ID => 2,
        FINGERPRINT => 1,
        FACE => 15,
        VEIN => 21,
        x if x == CARD | PASSWORD => 11,
        x if x == FINGERPRINT | PASSWORD => 9,
        x if x == CARD | FINGERPRINT => 10,
        x if x == USER_ID | FINGERPRINT => 8,
        x if x == FINGERPRINT | PASSWORD | CARD => 12,
        x if x == USER_ID | FINGERPRINT | PASSWORD => 13,
        _ => 200,
    };
    code.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_3_modes_with_a_keypad_reader() {
        let card_only = Mode::from_code(4).unwrap();
        assert_eq!(card_only.check(CARD), Check::Satisfied);
        assert_eq!(card_only.check(PASSWORD), Check::Wrong);
        assert_eq!(card_only.keypad_meaning(), KeypadMeaning::Nothing);

        let card_and_pw = Mode::from_code(11).unwrap();
        assert_eq!(card_and_pw.check(CARD), Check::NeedMore);
        assert_eq!(card_and_pw.check(PASSWORD), Check::NeedMore);
        assert_eq!(card_and_pw.check(CARD | PASSWORD), Check::Satisfied);

        let card_or_pw = Mode::from_code(7).unwrap();
        assert_eq!(card_or_pw.check(CARD), Check::Satisfied);
        assert_eq!(card_or_pw.check(PASSWORD), Check::Satisfied);
        assert_eq!(card_or_pw.keypad_meaning(), KeypadMeaning::Password);

        let user_id = Mode::from_code(2).unwrap();
        assert_eq!(user_id.keypad_meaning(), KeypadMeaning::UserId);
        assert_eq!(user_id.check(CARD), Check::Wrong);

        // Card and fingerprint cannot be finished without a fingerprint reader.
        assert_eq!(Mode::from_code(10).unwrap().check(CARD), Check::Wrong);
        assert_eq!(Mode::from_code(1).unwrap().check(CARD), Check::Wrong);
        // Auto takes a card or a password, not a bare user ID.
        assert_eq!(Mode::auto().check(CARD), Check::Satisfied);
        assert_eq!(Mode::auto().check(USER_ID), Check::Wrong);
        assert_eq!(Mode::from_code(99), None);
        assert_eq!(Mode::from_code(-1), None);
    }

    #[test]
    fn new_style_strings() {
        // The spec's examples: card | password (or), card & password (and).
        let or = Mode::from_vf_string("0000101000000000").unwrap();
        assert_eq!(or.check(CARD), Check::Satisfied);
        assert_eq!(or.check(PASSWORD), Check::Satisfied);
        let and = Mode::parse("0000101000000001").unwrap();
        assert_eq!(and.check(CARD), Check::NeedMore);
        assert_eq!(and.check(CARD | PASSWORD), Check::Satisfied);
        assert_eq!(Mode::from_vf_string("0000000000000001"), None);
        assert_eq!(Mode::from_vf_string("00001010000000x1"), None);
        assert_eq!(Mode::parse(" 11 "), Mode::from_code(11));
    }

    #[test]
    fn verifytype_codes_and_strings() {
        assert_eq!(verifytype(CARD, false), "4");
        assert_eq!(verifytype(CARD | PASSWORD, false), "11");
        assert_eq!(verifytype(USER_ID, false), "2");
        assert_eq!(verifytype(USER_ID | PASSWORD, false), "200");
        // 10.2: card 0000100000000000, password 0000001000000000, user ID 0000010000000000.
        assert_eq!(verifytype(CARD, true), "0000100000000000");
        assert_eq!(verifytype(PASSWORD, true), "0000001000000000");
        assert_eq!(verifytype(USER_ID, true), "0000010000000000");
        assert_eq!(verifytype(CARD | PASSWORD, true), "0000101000000001");
        // The spec's "card + password + face" example.
        assert_eq!(verifytype(CARD | PASSWORD | FACE, true), "0000101000000011");
    }
}
