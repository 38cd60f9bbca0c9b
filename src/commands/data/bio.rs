//! The hybrid biometric protocol (6.1, Appendix 18): which template and
//! photo types device and server both support, and what that means for
//! `biodata` and `biophoto` commands.

use super::condition::Condition;
use super::schema::Table;
use super::DataError;
use crate::store::Store;
use rusqlite::types::Value;

/// Appendix 18 type 9, the only type a server without the hybrid protocol uses.
pub const VISIBLE_LIGHT_FACE: i64 = 9;

/// Types the device stores (Appendix 18 order, colon-separated as in
/// registration). The controller keeps templates and photos for its
/// readers, which do the matching, so it can hold every type but "general".
pub const DEVICE_MULTI_BIO_DATA_SUPPORT: &str = "0:1:1:1:1:1:1:1:1:1";
pub const DEVICE_MULTI_BIO_PHOTO_SUPPORT: &str = "0:1:1:1:1:1:1:1:1:1";

/// Which list a table's `Type` is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BioRule {
    Data,
    Photo,
}

pub fn rule_for(table: &Table) -> Option<BioRule> {
    match table.name {
        "biodata" => Some(BioRule::Data),
        "biophoto" => Some(BioRule::Photo),
        _ => None,
    }
}

/// Parses `0:1:0:...` (spaces allowed) into per-type flags, indexed by
/// Appendix 18 type. Appendix 18 lists ten types; 6.1's worked example
/// sends nine entries (`0:1:0:0:0:0:0:0:1`) and reads the last as visible
/// light face, so a nine-entry list is types 0-7 then type 9 (palm vein,
/// type 8, absent). Text and example disagree on the length only; both
/// agree that visible light face is the last entry, which this follows.
pub fn parse_support(text: &str) -> [bool; 10] {
    let flags: Vec<bool> = text
        .split(':')
        .map(|part| part.trim().parse::<u32>().is_ok_and(|v| v != 0))
        .collect();
    let mut out = [false; 10];
    if flags.len() == 9 {
        out[..8].copy_from_slice(&flags[..8]);
        out[9] = flags[8];
    } else {
        for (slot, flag) in out.iter_mut().zip(flags) {
            *slot = flag;
        }
    }
    out
}

/// The negotiated support: `None` when the server never named its own
/// (it does not speak the hybrid protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BioSupport {
    pub data: Option<[bool; 10]>,
    pub photo: Option<[bool; 10]>,
}

fn and(a: [bool; 10], b: [bool; 10]) -> [bool; 10] {
    let mut out = [false; 10];
    for i in 0..10 {
        out[i] = a[i] && b[i];
    }
    out
}

impl BioSupport {
    /// From the server's MultiBioDataSupport/MultiBioPhotoSupport (7.5,
    /// persisted by the session) and the device's own lists.
    pub fn from_server(data: Option<&str>, photo: Option<&str>) -> Self {
        BioSupport {
            data: data.map(|s| {
                and(
                    parse_support(s),
                    parse_support(DEVICE_MULTI_BIO_DATA_SUPPORT),
                )
            }),
            photo: photo.map(|s| {
                and(
                    parse_support(s),
                    parse_support(DEVICE_MULTI_BIO_PHOTO_SUPPORT),
                )
            }),
        }
    }

    pub fn load(store: &Store) -> Result<Self, DataError> {
        let data = store.option("MultiBioDataSupport")?;
        let photo = store.option("MultiBioPhotoSupport")?;
        Ok(Self::from_server(data.as_deref(), photo.as_deref()))
    }

    fn list(&self, rule: BioRule) -> Option<[bool; 10]> {
        match rule {
            BioRule::Data => self.data,
            BioRule::Photo => self.photo,
        }
    }

    /// An UPDATE of type `ty`: once negotiated, only agreed types.
    pub fn check_update(&self, rule: BioRule, ty: i64) -> Result<(), DataError> {
        match self.list(rule) {
            None => Ok(()),
            Some(list) => {
                let ok = usize::try_from(ty).ok().and_then(|i| list.get(i).copied());
                if ok == Some(true) {
                    Ok(())
                } else {
                    Err(DataError::BioType(ty))
                }
            }
        }
    }

    /// DELETE of biodata names its Type (12.1.2.32); biophoto by PIN alone is fine.
    pub(crate) fn check_delete(&self, rule: BioRule, conds: &[Condition]) -> Result<(), DataError> {
        if let Some(ty) = type_of(conds) {
            if self.list(rule).is_some() {
                return self.check_update(rule, ty);
            }
        }
        Ok(())
    }

    /// COUNT/QUERY: with the hybrid protocol a Type is required (12.1.3.4);
    /// without it only visible-light faces exist, so one is implied.
    pub(crate) fn scope_filter(
        &self,
        rule: BioRule,
        conds: &mut Vec<Condition>,
    ) -> Result<(), DataError> {
        match (self.list(rule), type_of(conds)) {
            (Some(_), None) => Err(DataError::BioTypeRequired),
            (Some(_), Some(ty)) => self.check_update(rule, ty),
            (None, None) => {
                conds.push(Condition {
                    column: "type",
                    op: "=",
                    value: Value::Integer(VISIBLE_LIGHT_FACE),
                });
                Ok(())
            }
            (None, Some(_)) => Ok(()),
        }
    }
}

fn type_of(conds: &[Condition]) -> Option<i64> {
    conds
        .iter()
        .find(|c| c.column == "type")
        .and_then(|c| match c.value {
            Value::Integer(i) => Some(i),
            _ => None,
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn nine_entry_lists_end_with_visible_light_face_as_6_1_shows() {
        let nine = parse_support("0:1:0:0:0:0:0:0:1");
        assert!(nine[1] && nine[9] && !nine[8], "{nine:?}");
        let ten = parse_support("0:1:1:0:0:0:0:0:0:1");
        assert!(ten[1] && ten[2] && ten[9] && !ten[8], "{ten:?}");
        let short = parse_support("0:1");
        assert!(short[1] && !short[9]);
        // 6.1's example negotiated: visible light face templates only.
        let both = BioSupport::from_server(Some("0:0:0:0:0:0:0:0:1"), None);
        assert!(both.check_update(BioRule::Data, 9).is_ok());
        assert!(both.check_update(BioRule::Data, 8).is_err());
        assert!(both.check_update(BioRule::Data, 1).is_err());
    }

    use super::*;

    #[test]
    fn negotiation_is_the_intersection() {
        // 6.1's example: the server supports only visible-light faces.
        let s = BioSupport::from_server(Some("0:0:0:0:0:0:0:0:0:1"), Some("0: 0:0:0:0:0:0:0:0:1"));
        assert!(s.check_update(BioRule::Data, 9).is_ok());
        assert!(s.check_update(BioRule::Data, 1).is_err());
        assert!(s.check_update(BioRule::Data, 0).is_err());
        assert!(s.check_update(BioRule::Photo, 42).is_err());
        let none = BioSupport::from_server(None, None);
        assert!(none.check_update(BioRule::Data, 1).is_ok());
        let mut conds = Vec::new();
        none.scope_filter(BioRule::Data, &mut conds).unwrap();
        assert_eq!(conds[0].value, Value::Integer(9));
        let mut conds = Vec::new();
        assert!(matches!(
            s.scope_filter(BioRule::Data, &mut conds),
            Err(DataError::BioTypeRequired)
        ));
    }
}
