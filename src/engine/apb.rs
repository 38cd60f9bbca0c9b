//! Device-wide anti-passback zones (Appendix 8) and interlock groups
//! (Appendix 9): pure decoding of the option values.

/// A passage point: a door, and for reader-level zones the side (0 in, 1 out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    door: u8,
    direction: Option<u32>,
}

/// Two sides a user must alternate between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Stored id (see migration 4).
    pub id: u8,
    a: Vec<Point>,
    b: Vec<Point>,
}

fn doors(list: &[u8]) -> Vec<Point> {
    list.iter()
        .map(|d| Point {
            door: *d,
            direction: None,
        })
        .collect()
}

impl Zone {
    fn doors(id: u8, a: &[u8], b: &[u8]) -> Zone {
        Zone {
            id,
            a: doors(a),
            b: doors(b),
        }
    }

    /// The side (0 or 1) a passage at `door` in `direction` is on, if any.
    pub fn side(&self, door: u8, direction: u32) -> Option<u32> {
        let hit = |p: &Point| p.door == door && p.direction.is_none_or_eq(direction);
        if self.a.iter().any(hit) {
            Some(0)
        } else if self.b.iter().any(hit) {
            Some(1)
        } else {
            None
        }
    }
}

/// `Option<u32>::is_none_or` is newer than the MSRV.
trait NoneOrEq {
    fn is_none_or_eq(&self, v: u32) -> bool;
}

impl NoneOrEq for Option<u32> {
    fn is_none_or_eq(&self, v: u32) -> bool {
        match self {
            None => true,
            Some(x) => *x == v,
        }
    }
}

/// The zones of an `AntiPassback` value. The low four bits are the door
/// value (0–6), bits 4–7 the in/out readers of doors 1–4 ("APB between
/// readers N"). The table's 196 for "readers 3 and 4" is read as 192,
/// the value its text describes (64 + 128).
pub fn zones(value: i64) -> Vec<Zone> {
    let value = if value == 196 { 192 } else { value };
    let mut out = Vec::new();
    match value & 0x0F {
        1 => out.push(Zone::doors(1, &[1], &[2])),
        2 => out.push(Zone::doors(2, &[3], &[4])),
        3 => {
            out.push(Zone::doors(1, &[1], &[2]));
            out.push(Zone::doors(2, &[3], &[4]));
        }
        4 => out.push(Zone::doors(4, &[1, 2], &[3, 4])),
        5 => out.push(Zone::doors(5, &[1], &[2, 3])),
        6 => out.push(Zone::doors(6, &[1], &[2, 3, 4])),
        0 => {}
        other => log::warn!("AntiPassback door value {other} is not in Appendix 8; ignored"),
    }
    for door in 1..=4u8 {
        if value & (0x10 << (door - 1)) != 0 {
            out.push(Zone {
                id: 10 + door,
                a: vec![Point {
                    door,
                    direction: Some(0),
                }],
                b: vec![Point {
                    door,
                    direction: Some(1),
                }],
            });
        }
    }
    out
}

/// The interlock groups of an `InterLock` value: doors of a group open
/// only while every other door of it is closed and locked.
pub fn interlock_groups(value: i64) -> &'static [&'static [u8]] {
    match value {
        1 => &[&[1, 2]],
        2 => &[&[3, 4]],
        3 => &[&[1, 2, 3]],
        4 => &[&[1, 2], &[3, 4]],
        5 => &[&[1, 2, 3, 4]],
        0 => &[],
        other => {
            log::warn!("InterLock value {other} is not in Appendix 9; ignored");
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_zones_of_appendix_8() {
        let z = zones(1);
        assert_eq!(z.len(), 1);
        assert_eq!(z[0].side(1, 0), Some(0));
        assert_eq!(z[0].side(1, 1), Some(0), "any reader of door 1");
        assert_eq!(z[0].side(2, 0), Some(1));
        assert_eq!(z[0].side(3, 0), None);
        assert_eq!(zones(3).len(), 2);
        let z = zones(4);
        assert_eq!(
            (z[0].side(2, 0), z[0].side(4, 1)),
            (Some(0), Some(1)),
            "1 or 2 against 3 or 4"
        );
        let z = zones(6);
        assert_eq!((z[0].side(1, 0), z[0].side(4, 0)), (Some(0), Some(1)));
        assert!(zones(0).is_empty());
        assert!(zones(9).is_empty());
    }

    #[test]
    fn reader_zones_of_appendix_8() {
        let ids = |v| zones(v).iter().map(|z| z.id).collect::<Vec<_>>();
        assert_eq!(ids(16), [11]);
        assert_eq!(ids(48), [11, 12]);
        assert_eq!(ids(240), [11, 12, 13, 14]);
        assert_eq!(ids(196), [13, 14], "the table's typo for 192");
        assert_eq!(ids(208), [11, 13, 14]);
        let z = &zones(32)[0];
        assert_eq!(
            (z.side(2, 0), z.side(2, 1), z.side(1, 0)),
            (Some(0), Some(1), None)
        );
    }

    #[test]
    fn interlock_groups_of_appendix_9() {
        assert_eq!(interlock_groups(4), &[&[1u8, 2][..], &[3, 4][..]]);
        assert_eq!(interlock_groups(5), &[&[1u8, 2, 3, 4][..]]);
        assert!(interlock_groups(7).is_empty());
    }
}
