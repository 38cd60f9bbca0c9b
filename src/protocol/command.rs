//! Commands the server hands out on `/iclock/getrequest` (11.1, Appendix 14).
//!
//! A command starts with `C:<id>:` (CmdFormat 0) or with
//! `DataType=1,SN=..,Priority=..,CmdID=..,CmdDesc=C:<id>:` (CmdFormat 1). The
//! lines after it that start neither way are further records of the same
//! command (multi-record `DATA UPDATE`, 12.1.1), joined to it with LF.

/// One command as received: its ID and its text (`DATA UPDATE user Pin=1...`,
/// further records after LF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub id: String,
    pub text: String,
}

impl CommandLine {
    /// What the command is remembered by besides its ID: hex MD5 of the
    /// text as parsed (CR stripped, records joined by LF), so the same
    /// command matches whatever line endings or command format (Appendix
    /// 14) carried it. Nothing here is a security boundary: a server can
    /// send any command it likes anyway.
    pub fn text_digest(&self) -> String {
        super::token::md5_hex(&[&self.text])
    }
}

/// A line of a getrequest answer that could not become a command. Logged; a
/// line without an ID cannot be answered, so nothing is reported for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandParseIssue {
    /// `C:` without a usable `<id>:` part.
    MissingId(String),
    /// A record line before any command.
    Orphan(String),
}

/// The lines of an answer that could not become commands: all counted, the
/// first few kept. A server (or a broken proxy) can send millions of junk
/// lines; what they cost must not grow with them (one summary log line per
/// answer, a few clipped samples in memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseIssues {
    count: usize,
    first: Vec<CommandParseIssue>,
}

impl ParseIssues {
    /// Issues kept as samples; the rest are only counted.
    pub const KEPT: usize = 3;

    /// Counts one issue; `make` runs only while samples are still kept.
    fn note(&mut self, make: impl FnOnce() -> CommandParseIssue) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(make());
        }
    }

    /// How many lines were not commands.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first few of them, clipped.
    pub fn first(&self) -> &[CommandParseIssue] {
        &self.first
    }
}

/// Longest command ID accepted. IDs can be large and time-based (interop.md)
/// but never need more than this.
const MAX_ID_LEN: usize = 64;

/// Parses a getrequest answer into commands, in the order given.
pub fn parse_getrequest(body: &str) -> (Vec<CommandLine>, ParseIssues) {
    let mut commands: Vec<CommandLine> = Vec::new();
    let mut issues = ParseIssues::default();
    for line in super::lines(body) {
        let trimmed = line.trim_start();
        if let Some(rest) = strip_prefix_ignore_case(trimmed, "DataType=") {
            match parse_cmd_format_1(rest) {
                Ok(cmd) => commands.push(cmd),
                Err(issue) => issues.note(|| issue),
            }
        } else if trimmed.starts_with("C:") || trimmed.starts_with("c:") {
            match parse_c_line(&trimmed[2..]) {
                Ok(cmd) => commands.push(cmd),
                Err(issue) => issues.note(|| issue),
            }
        } else if let Some(last) = commands.last_mut() {
            last.text.push('\n');
            last.text.push_str(line);
        } else if !trimmed.eq_ignore_ascii_case("ok") {
            issues.note(|| CommandParseIssue::Orphan(clip(line)));
        }
    }
    (commands, issues)
}

/// Parses what follows `C:`: `<id>:<text>`.
fn parse_c_line(rest: &str) -> Result<CommandLine, CommandParseIssue> {
    let Some((id, text)) = rest.split_once(':') else {
        return Err(CommandParseIssue::MissingId(clip(rest)));
    };
    let id = id.trim();
    if !valid_id(id) {
        return Err(CommandParseIssue::MissingId(clip(rest)));
    }
    Ok(CommandLine {
        id: id.to_owned(),
        text: text.trim_start().to_owned(),
    })
}

/// Parses what follows `DataType=`: `1,SN=..,Priority=..,CmdID=..,CmdDesc=C:<id>:<text>`.
/// The command text may itself contain commas, so CmdDesc is taken as the rest.
fn parse_cmd_format_1(rest: &str) -> Result<CommandLine, CommandParseIssue> {
    let lower = rest.to_ascii_lowercase();
    let Some(pos) = lower.find("cmddesc=") else {
        return Err(CommandParseIssue::MissingId(clip(rest)));
    };
    let header = &rest[..pos];
    let desc = &rest[pos + "cmddesc=".len()..];
    let header_id = header
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("CmdID"))
        .map(|(_, v)| v.trim().to_owned());
    let desc = desc.trim_start();
    if let Some(after) = strip_prefix_ignore_case(desc, "C:") {
        return parse_c_line(after);
    }
    // CmdDesc without its own `C:<id>:` prefix: take the ID from CmdID.
    match header_id {
        Some(id) if valid_id(&id) => Ok(CommandLine {
            id,
            text: desc.to_owned(),
        }),
        _ => Err(CommandParseIssue::MissingId(clip(rest))),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// What a command asks for, from its first words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    DataUpdate,
    DataDelete,
    DataCount,
    DataQuery,
    ControlDevice,
    SetOptions,
    GetOptions,
    Upgrade,
    Account,
    /// Any other command; the text is the first word(s), kept for the result.
    Other(String),
}

/// A command split into its verb and the rest of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub id: String,
    pub verb: Verb,
    /// Everything after the verb words, leading separators removed.
    pub rest: String,
}

impl Command {
    /// Splits a received command. Words may be separated by spaces or TABs.
    pub fn classify(line: &CommandLine) -> Command {
        let text = line.text.as_str();
        let (w1, after1) = next_word(text);
        let (w2, after2) = next_word(after1);
        let upper1 = w1.to_ascii_uppercase();
        let upper2 = w2.to_ascii_uppercase();
        let (verb, rest) = match (upper1.as_str(), upper2.as_str()) {
            ("DATA", "UPDATE") => (Verb::DataUpdate, after2),
            ("DATA", "DELETE") => (Verb::DataDelete, after2),
            ("DATA", "COUNT") => (Verb::DataCount, after2),
            ("DATA", "QUERY") => (Verb::DataQuery, after2),
            ("CONTROL", "DEVICE") => (Verb::ControlDevice, after2),
            ("SET", "OPTIONS") | ("SET", "OPTION") => (Verb::SetOptions, after2),
            ("GET", "OPTIONS") | ("GET", "OPTION") => (Verb::GetOptions, after2),
            ("UPGRADE", _) => (Verb::Upgrade, after1),
            ("ACCOUNT", _) => (Verb::Account, after1),
            _ => {
                let name = if w2.is_empty() || w2.contains('=') {
                    w1.to_owned()
                } else {
                    format!("{w1} {w2}")
                };
                (Verb::Other(name), after1)
            }
        };
        Command {
            id: line.id.clone(),
            verb,
            rest: rest.to_owned(),
        }
    }

    /// The `CMD=` value of the result (10.4). The spec's examples answer DATA
    /// UPDATE/DELETE with `CMD=DATA` (134 of them) and a few with `DATA UPDATE`;
    /// we follow the majority. COUNT and QUERY keep their second word as the
    /// spec shows.
    pub fn result_name(&self) -> String {
        match &self.verb {
            Verb::DataUpdate | Verb::DataDelete => "DATA".into(),
            Verb::DataCount => "DATA COUNT".into(),
            Verb::DataQuery => "DATA QUERY".into(),
            Verb::ControlDevice => "CONTROL DEVICE".into(),
            Verb::SetOptions => "SET OPTIONS".into(),
            Verb::GetOptions => "GET OPTIONS".into(),
            Verb::Upgrade => "UPGRADE".into(),
            Verb::Account => "ACCOUNT".into(),
            Verb::Other(name) => sanitize_cmd_name(name),
        }
    }

    /// For DATA commands: the table name and the records after it. The table
    /// name may be followed by a space or a TAB (interop.md).
    pub fn table_and_body(&self) -> (&str, &str) {
        let (table, rest) = next_word(&self.rest);
        (table, rest)
    }
}

/// Splits off the first word; separators are spaces and TABs (not LF, which
/// separates records).
fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t', '\n']) {
        Some(end) => {
            let rest = &s[end..];
            // Keep a leading LF (a record boundary); drop one space/TAB separator run.
            (&s[..end], rest.trim_start_matches([' ', '\t']))
        }
        None => (s, ""),
    }
}

/// A command name echoed back in `CMD=` must not break the `&`-separated
/// result line.
fn sanitize_cmd_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '&' | '\n' | '\r' | '='))
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> CommandLine {
        let (cmds, issues) = parse_getrequest(body);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        cmds.into_iter().next().unwrap()
    }

    #[test]
    fn cmd_format_0_single_and_multi_record() {
        let c = one("C:295:DATA UPDATE user CardNo=\tPin=1\tName=A\nCardNo=\tPin=2\r\n");
        assert_eq!(c.id, "295");
        assert_eq!(
            c.text,
            "DATA UPDATE user CardNo=\tPin=1\tName=A\nCardNo=\tPin=2"
        );
    }

    #[test]
    fn several_commands_with_mixed_line_endings() {
        let (cmds, issues) = parse_getrequest(
            "C:1:SET OPTIONS A=1\r\n\nC:20231124153000123:CONTROL DEVICE 01010105\r\n\nC:3:X",
        );
        assert!(issues.is_empty());
        let ids: Vec<_> = cmds.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["1", "20231124153000123", "3"]);
    }

    #[test]
    fn cmd_format_1_with_records_after_it() {
        let body = "DataType=1,SN=DDG7012017010600049,Priority=0,CmdID=295,CmdDesc=C:295:DATA UPDATE DoorParameters ID=1\tName=DoorAutoMatch\tValue=1\nID=1\tName=DoorDrivertime\tValue=5\n";
        let c = one(body);
        assert_eq!(c.id, "295");
        assert!(c.text.starts_with("DATA UPDATE DoorParameters ID=1"));
        assert!(c.text.ends_with("\nID=1\tName=DoorDrivertime\tValue=5"));
    }

    #[test]
    fn cmd_format_1_without_inner_prefix_uses_cmdid() {
        let c = one("DataType=1,SN=X,Priority=0,CmdID=77,CmdDesc=SET OPTIONS A=1,B=2");
        assert_eq!(c.id, "77");
        assert_eq!(c.text, "SET OPTIONS A=1,B=2");
    }

    #[test]
    fn malformed_lines_are_issues_not_panics() {
        let (cmds, issues) = parse_getrequest("garbage\nC:no-colon-here\nC::x\nC:1:OK");
        assert_eq!(cmds.len(), 1);
        assert_eq!(issues.len(), 3);
        let (cmds, issues) = parse_getrequest("OK");
        assert!(cmds.is_empty() && issues.is_empty());
    }

    #[test]
    fn junk_lines_are_counted_and_only_a_few_kept() {
        let mut body = String::from("OK\n");
        for i in 0..100_000 {
            body.push_str(&format!("junk line {i} {}\n", "y".repeat(200)));
        }
        let (cmds, issues) = parse_getrequest(&body);
        assert!(cmds.is_empty());
        assert_eq!(issues.len(), 100_000);
        assert_eq!(issues.first().len(), ParseIssues::KEPT);
        assert_eq!(
            issues.first()[0],
            CommandParseIssue::Orphan(format!("junk line 0 {}", "y".repeat(68)))
        );
    }

    #[test]
    fn the_digest_is_the_same_for_the_same_text_in_either_format() {
        let plain = one("C:2:DATA DELETE userauthorize Pin=1001\r\n");
        let prefixed = one(
            "DataType=1,SN=X,Priority=0,CmdID=2,CmdDesc=C:2:DATA DELETE userauthorize Pin=1001",
        );
        assert_eq!(plain.text_digest(), prefixed.text_digest());
        assert_eq!(plain.text_digest().len(), 32);
        let other = one("C:2:DATA DELETE userauthorize Pin=1002");
        assert_ne!(plain.text_digest(), other.text_digest());
    }

    #[test]
    fn classify_verbs_and_tables() {
        let c = Command::classify(&one("C:9:DATA UPDATE\tuser\tPin=1"));
        assert_eq!(c.verb, Verb::DataUpdate);
        assert_eq!(c.table_and_body(), ("user", "Pin=1"));
        let c = Command::classify(&one("C:9:DATA DELETE user *"));
        assert_eq!(c.table_and_body(), ("user", "*"));
        let c = Command::classify(&one("C:9:CONTROL DEVICE 0101010005"));
        assert_eq!(
            (c.verb.clone(), c.rest.as_str()),
            (Verb::ControlDevice, "0101010005")
        );
        assert_eq!(c.result_name(), "CONTROL DEVICE");
        let c = Command::classify(&one("C:9:ENROLL_FP PIN=1"));
        assert_eq!(c.verb, Verb::Other("ENROLL_FP".into()));
        let c = Command::classify(&one("C:9:CLEAR LOG"));
        assert_eq!(c.result_name(), "CLEAR LOG");
    }
}
