//! Random and hostile command lines against the parser and the executors:
//! nothing panics, every outcome is a defined Return code, and a command
//! that fails leaves the database as it was.

mod data_common;

use data_common::Harness;
use lintel::commands::codes;
use lintel::commands::data::schema::TABLES;
use lintel::protocol::command::Command;
use lintel::protocol::parse_getrequest;
use proptest::prelude::*;

const DEFINED: &[i64] = &[
    codes::BAD_PARAMETER,
    codes::EXECUTION_ERROR,
    codes::UNKNOWN_COMMAND,
    codes::DATA_TOO_BIG,
    codes::INVALID_OPTIONS,
    codes::SAVE_PARAMETER_FAILED,
    codes::BAD_DATA_FORMAT,
    codes::UNKNOWN_FIELD,
    codes::UNKNOWN_TABLE,
    codes::BAD_BASE64_LENGTH,
    codes::UNSUPPORTED_COMMAND,
    codes::DOWNLOAD_FAILED,
    codes::UPLOAD_OPTIONS_FAILED,
    codes::SERVER_RECEIVE_ERROR,
];

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("'; DROP TABLE users; --".to_string()),
        Just("1 OR 1=1".to_string()),
        Just("[15CD5B07]".to_string()),
        Just("[15CD5B0".to_string()),
        Just("QUJ".to_string()),
        Just("QU*D====".to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("20240230".to_string()),
        Just("4294967295".to_string()),
        (1usize..70_000).prop_map(|n| "A".repeat(n)),
        "[0-9]{1,12}",
        "\\PC{0,40}",
        any::<String>(),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = TABLES
        .iter()
        .flat_map(|t| t.fields.iter().map(|f| f.name.to_string()))
        .collect();
    prop_oneof![
        3 => proptest::sample::select(known),
        1 => "[A-Za-z_~.]{1,10}",
        1 => Just("Pin);--".to_string()),
        1 => any::<String>(),
    ]
}

fn table_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
    prop_oneof![
        4 => proptest::sample::select(known),
        1 => Just("users; DROP TABLE users".to_string()),
        1 => Just("sqlite_master".to_string()),
        1 => "[a-zA-Z]{0,12}",
    ]
}

fn record() -> impl Strategy<Value = String> {
    proptest::collection::vec((field_name(), hostile_value()), 0..6).prop_map(|fields| {
        fields
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\t")
    })
}

fn command_line() -> impl Strategy<Value = String> {
    let verb = prop_oneof![
        Just("DATA UPDATE"),
        Just("DATA DELETE"),
        Just("DATA COUNT"),
        Just("DATA QUERY"),
        Just("SET OPTIONS"),
        Just("GET OPTIONS"),
        Just("ACCOUNT"),
    ];
    (
        verb,
        table_name(),
        proptest::collection::vec(record(), 0..4),
        any::<bool>(),
        0usize..400,
    )
        .prop_map(|(verb, table, records, truncate, cut)| {
            let body = if verb == "DATA QUERY" {
                format!(
                    "tablename={table},fielddesc=*,filter={}",
                    records.first().cloned().unwrap_or_default()
                )
            } else if verb.ends_with("OPTIONS") {
                records.join(",").replace('\t', ",")
            } else {
                format!("{table} {}", records.join("\n"))
            };
            let mut line = format!("C:42:{verb} {body}");
            if truncate && cut < line.len() {
                let mut end = cut.max(5);
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                line.truncate(end);
            }
            line
        })
}

fn check(h: &mut Harness, line: &str) -> Result<(), TestCaseError> {
    let (cmds, _issues) = parse_getrequest(line);
    for c in cmds {
        let before = h.snapshot();
        let options_before = h.store.all_options().unwrap();
        let command = Command::classify(&c);
        let mut ctx = lintel::commands::CommandContext {
            store: &mut h.store,
            link: &mut h.link,
            clock: &h.clock,
            platform: &h.platform,
        };
        let out = h.dispatcher.execute(&command, &mut ctx);
        prop_assert!(
            out.ret >= 0 || DEFINED.contains(&out.ret),
            "undefined code {} for {:?}",
            out.ret,
            line.chars().take(200).collect::<String>()
        );
        if out.ret < 0 {
            prop_assert!(h.snapshot() == before, "failed command changed data");
            prop_assert!(h.store.all_options().unwrap() == options_before);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn structured_hostile_commands(line in command_line()) {
        let mut h = Harness::new();
        // Some existing data so deletes and failed updates have something to spoil.
        h.ret("C:1:DATA UPDATE user Pin=1\tName=A\nPin=2\tCardNo=[15CD5B07]");
        h.ret("C:2:DATA UPDATE userauthorize Pin=1\tAuthorizeTimezoneId=1\tAuthorizeDoorId=3");
        check(&mut h, &line)?;
        let users: i64 = h.count_rows("users");
        prop_assert!(users <= 2 + 4, "users table still readable");
    }

    #[test]
    fn arbitrary_text_never_panics(body in any::<String>()) {
        let mut h = Harness::new();
        check(&mut h, &format!("C:7:DATA UPDATE user {body}"))?;
        check(&mut h, &format!("C:8:{body}"))?;
        check(&mut h, &body)?;
    }
}
