//! Which DATA commands take access away. A command whose ID and text are
//! both those of one already executed is normally answered from its stored
//! result without running again (the spec's case: the result was lost and
//! the server offers the command again). A revocation is applied again
//! instead: the device cannot tell that case from a server that restarted
//! and sends the same revocation under a recycled ID after other commands
//! re-granted the access, and the charter says a revocation is never
//! skipped. Applying one again is harmless, since DATA commands are
//! idempotent, and errs towards denying.

use super::schema;
use crate::protocol::command::{Command, Verb};
use crate::protocol::record::parse_fields;

/// Tables whose rows grant access or identify a person: deleting any of
/// their rows can only take access away. Tables whose deletion can widen
/// access are left out on purpose: `timezone` (deleting rule 1 restores the
/// factory 24-hour rule), `holiday`, the verification-mode tables (a
/// personal mode removed falls back to the door's, possibly weaker, one),
/// door and reader settings.
const ACCESS_TABLES: &[&str] = &[
    "user",
    "userauthorize",
    "SuperAuthorize",
    "mulcarduser",
    "identitycard",
    "templatev10",
    "biodata",
    "biophoto",
    "userpic",
    "firstcard",
];

/// `(table, field)`: a DATA UPDATE is a revocation when every one of its
/// records sets this field to a non-zero value: the blacklist flag of a
/// user (`Disable=1`, 10.5) and a lost card (`LossCardFlag=1`, 12.1.1.3).
const REVOKING_FLAGS: &[(&str, &str)] = &[("user", "Disable"), ("mulcarduser", "LossCardFlag")];

/// Whether `command` takes access away (see the module comment).
pub fn is_revocation(command: &Command) -> bool {
    let (name, body) = command.table_and_body();
    let Some(table) = schema::table(name) else {
        return false;
    };
    match command.verb {
        Verb::DataDelete => ACCESS_TABLES.contains(&table.name),
        Verb::DataUpdate => {
            let Some(&(_, flag)) = REVOKING_FLAGS.iter().find(|(t, _)| *t == table.name) else {
                return false;
            };
            let Some((_, field)) = table.field(flag) else {
                return false;
            };
            let mut records = super::record_lines(body).peekable();
            records.peek().is_some()
                && records.all(|(_, line)| {
                    parse_fields(line).is_ok_and(|fields| {
                        fields.iter().any(|(k, v)| {
                            field.matches(k) && v.trim().parse::<i64>().is_ok_and(|n| n != 0)
                        })
                    })
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_getrequest;

    fn revokes(text: &str) -> bool {
        let (lines, _) = parse_getrequest(&format!("C:1:{text}"));
        is_revocation(&Command::classify(&lines[0]))
    }

    #[test]
    fn deletes_of_access_tables_revoke() {
        assert!(revokes("DATA DELETE userauthorize Pin=1001"));
        assert!(revokes("DATA DELETE user Pin=1001"));
        assert!(revokes("DATA DELETE USER\tPin=1001"));
        assert!(revokes("DATA DELETE SuperAuthorize Pin=1"));
        assert!(revokes("DATA DELETE mulcarduser *"));
        assert!(revokes("DATA DELETE template10 Pin=1"));
    }

    #[test]
    fn deletes_that_can_widen_access_and_other_verbs_do_not() {
        assert!(!revokes("DATA DELETE timezone TimezoneId=1"));
        assert!(!revokes("DATA DELETE holiday Holiday=20240101"));
        assert!(!revokes("DATA DELETE PersonalVSTimezone PIN=1"));
        assert!(!revokes("DATA DELETE nosuchtable Pin=1"));
        assert!(!revokes("DATA COUNT user"));
        assert!(!revokes("CONTROL DEVICE 01010105"));
    }

    #[test]
    fn updates_revoke_only_when_every_record_sets_the_flag() {
        assert!(revokes("DATA UPDATE user Pin=1\tName=A\tDisable=1"));
        assert!(revokes(
            "DATA UPDATE user Pin=1\tdisable=1\nPin=2\tDisable=2"
        ));
        assert!(revokes(
            "DATA UPDATE mulcarduser Pin=1\tCardNo=CC9932DD\tLossCardFlag=1\tCardType=0"
        ));
        assert!(!revokes(
            "DATA UPDATE user Pin=1\tDisable=1\nPin=2\tDisable=0"
        ));
        assert!(!revokes("DATA UPDATE user Pin=1\tName=A"));
        assert!(!revokes("DATA UPDATE user Pin=1\tDisable=x"));
        assert!(!revokes("DATA UPDATE user"));
        assert!(!revokes(
            "DATA UPDATE userauthorize Pin=1\tAuthorizeTimezoneId=1\tAuthorizeDoorId=1"
        ));
    }
}
