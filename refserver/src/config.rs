//! Server configuration: the spec-following defaults plus every knob needed
//! to reproduce the deployed-server behaviours listed in `shared/interop.md`.

use std::time::{Duration, SystemTime};

pub use crate::http::Framing;

/// How commands are written in a `/iclock/getrequest` answer (Appendix 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdFormat {
    /// `C:<id>:<command>`
    Plain,
    /// `DataType=1,SN=<sn>,Priority=0,CmdID=<id>,CmdDesc=C:<id>:<command>`
    Prefixed,
}

/// Which format to use for commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CmdFormatChoice {
    /// Follow the `CmdFormat=` value of the device's registry line: 1 means
    /// [`CmdFormat::Prefixed`], anything else (or absent) [`CmdFormat::Plain`].
    #[default]
    AsRegistered,
    /// Always this format, whatever the device asked for.
    Force(CmdFormat),
}

/// How uploads to `/iclock/cdata` and `/iclock/querydata` are acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AckMode {
    /// What the spec shows: `OK` for rtlog/rtstate/options and other tables,
    /// `<tablename>=<records>` for `table=tabledata` (10.5) and querydata
    /// `type=tabledata` (12.1.4); `OK` for querydata `type=count|options`.
    #[default]
    Spec,
    /// Always `OK`.
    Ok,
    /// Always `OK: <records>`.
    OkCount,
    /// Always `<table>=<records>` (table = tablename, else the table= value).
    TableCount,
    /// `<table>=<count>` echoing the query string's `count=` (some servers do
    /// not count at all).
    EchoQueryCount,
    /// A 200 whose body is this error text (the upload was not accepted).
    ErrorText(String),
}

/// Line separator used in text reply bodies (config blocks, command lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n` between lines (what the spec examples show).
    #[default]
    Lf,
    /// `\r\n` between lines.
    CrLf,
    /// `\r\n\n` between lines (seen after each command on some servers).
    CrLfLf,
    /// Alternating `\r\n` and `\n`.
    Mixed,
}

/// What the init request (`GET /iclock/cdata?options=all`) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitReply {
    /// Spec 7.1: `OK` while the serial is unregistered, the `registry=ok`
    /// block once it has registered.
    #[default]
    Spec,
    /// Always the `registry=ok` block: an unregistered serial is registered on
    /// the spot (servers that never expect `/iclock/registry`).
    AlwaysBlock,
    /// Always a bare `OK`, even for registered serials.
    AlwaysOk,
}

/// Whether registrations are accepted automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// Every serial with a valid capability line is registered.
    #[default]
    Auto,
    /// Only serials approved with `RefServer::approve_serial` (or listed in
    /// [`ServerConfig::approved_serials`]) register; others get 406.
    Manual,
}

/// Style of server-assigned command IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdStyle {
    /// 1, 2, 3, ...
    #[default]
    Sequential,
    /// Large, time-derived and non-monotonic (some servers use timestamps).
    TimeBased,
}

/// The server's notion of "now" (for the `Date` header and `rtdata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    #[default]
    System,
    /// System time shifted by this many seconds (may be negative).
    OffsetSecs(i64),
    /// A fixed instant.
    Fixed(SystemTime),
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        match *self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => t,
            Clock::OffsetSecs(s) => {
                let now = SystemTime::now();
                let d = Duration::from_secs(s.unsigned_abs());
                if s >= 0 {
                    now + d
                } else {
                    now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)
                }
            }
        }
    }
}

/// Which config key carries the protocol version in config blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionKey {
    #[default]
    PushProtVer,
    PushVersion,
}

/// Encrypted PUSH (docs/encrypted-push.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// No `/iclock/exchange` (404), as servers without encryption.
    #[default]
    Off,
    /// Answers the exchange and announces `PushProtVer` in its bare `OK`
    /// init answer too; plain devices are served as before.
    Supported,
    /// Like `Supported`, and every request but init and the exchange of a
    /// serial without a channel gets 400.
    Required,
}

/// Complete server configuration. `ServerConfig::default()` is a strict
/// server that follows the spec text.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `ServerName` config value. Default `lintel-refserver`.
    pub server_name: String,
    /// `ServerVersion` config value. Default `3.1.2`.
    pub server_version: String,
    /// Protocol version the server announces (Appendix 13). Default `3.1.2`.
    pub push_prot_ver: String,
    /// Key used for the protocol version. Default `PushProtVer`.
    pub version_key: VersionKey,
    /// `ErrorDelay` (s). Default 30.
    pub error_delay: u32,
    /// `RequestDelay` (s). Default 2 (a test server wants quick polls).
    pub request_delay: u32,
    /// `TransTimes`. Default `00:00;14:00`.
    pub trans_times: String,
    /// `TransInterval` (min). Default 1.
    pub trans_interval: u32,
    /// `TransTables`. Default `User Transaction`.
    pub trans_tables: String,
    /// `Realtime`. Default 1.
    pub realtime: u8,
    /// `TimeoutSec`. Default 10.
    pub timeout_sec: u32,
    /// Extra keys appended to every config block (unknown keys the device must ignore).
    pub extra_config: Vec<(String, String)>,
    /// Init reply behaviour. Default [`InitReply::Spec`].
    pub init_reply: InitReply,
    /// Registration approval. Default [`Approval::Auto`].
    pub approval: Approval,
    /// Serials approved in advance for [`Approval::Manual`].
    pub approved_serials: Vec<String>,
    /// When `Some`, serials not in the list get 401 on every `/iclock/` request.
    pub known_serials: Option<Vec<String>>,
    /// Capability keys a registry line must carry (else 406). Default: the
    /// non-optional access-control keys of 7.4.
    pub required_capabilities: Vec<String>,
    /// Check `Cookie: token=` on requests after registration (401 if wrong).
    /// Default true.
    pub token_check: bool,
    /// Command format. Default [`CmdFormatChoice::AsRegistered`].
    pub cmd_format: CmdFormatChoice,
    /// Most commands in one getrequest answer; `None` = all pending.
    pub max_commands_per_poll: Option<usize>,
    /// Re-send a delivered command on later polls until its result arrives.
    /// Default true (as real servers do).
    pub resend_until_result: bool,
    /// Take only the first result line of a devicecmd POST. Default false.
    pub devicecmd_first_result_only: bool,
    /// Upload acknowledgement. Default [`AckMode::Spec`].
    pub ack_mode: AckMode,
    /// Answer 400 when `count=` disagrees with the records received. Default true.
    pub reject_count_mismatch: bool,
    /// Line separator of text replies. Default [`LineEnding::Lf`].
    pub line_ending: LineEnding,
    /// Also end the last line of a text reply with the separator. Default
    /// false (spec examples: `Content-Length: 2` for `OK`).
    pub final_newline: bool,
    /// Response framing. Default [`Framing::ContentLength`] with keep-alive.
    pub framing: Framing,
    /// `Content-Type` of text replies. Default `text/plain;charset=UTF-8`.
    pub content_type: String,
    /// `Server` header. Default `lintel-refserver`.
    pub server_header: String,
    /// Unrelated `Set-Cookie` headers added to every reply.
    pub extra_set_cookies: Vec<String>,
    /// Send `Set-Cookie: JSESSIONID=<SessionID>` with the registry reply, as
    /// the spec example (7.4) does. Default true.
    pub session_cookie_on_registry: bool,
    /// Assign a new SessionID at every `/iclock/push`. Default false.
    pub rotate_session_on_push: bool,
    /// Assign a new SessionID at every init request that answers the block.
    /// Default false.
    pub rotate_session_on_init: bool,
    /// Command ID style. Default [`IdStyle::Sequential`].
    pub id_style: IdStyle,
    /// Endpoint paths answered with 404 (servers that lack them), e.g. `/iclock/ping`.
    pub missing_endpoints: Vec<String>,
    /// Clock for the `Date` header and `rtdata`. Default system time.
    pub clock: Clock,
    /// `ServerTZ` of the rtdata `type=time` answer (12.5.1), e.g. `+0800`;
    /// `None` answers `DateTime` alone. Default `+0000`.
    pub server_tz: Option<String>,
    /// Enable `/admin/*` endpoints (queue commands, list uploads). Default false.
    pub admin: bool,
    /// Commands queued for each serial when it first contacts the server
    /// (used by the demo to enrol users).
    pub initial_commands: Vec<String>,
    /// Encrypted PUSH. Default [`Encryption::Off`].
    pub encryption: Encryption,
    /// Keep only the first line of an rtlog POST body and acknowledge it
    /// `OK`, as servers that parse the body as one `${DataRecord}` (10.2)
    /// do: every further record of the POST is lost. Default false.
    pub rtlog_first_line_only: bool,
    /// Fields appended, when it lacks them, to every record of a `DATA
    /// UPDATE user` command as it is delivered, as servers written for
    /// ZKTeco's C3/inBio panels send their user table (`SuperAuthorize=0`,
    /// `Disable=0`). Default none.
    pub extra_user_fields: Vec<(String, String)>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_name: "lintel-refserver".into(),
            server_version: "3.1.2".into(),
            push_prot_ver: "3.1.2".into(),
            version_key: VersionKey::PushProtVer,
            error_delay: 30,
            request_delay: 2,
            trans_times: "00:00;14:00".into(),
            trans_interval: 1,
            trans_tables: "User Transaction".into(),
            realtime: 1,
            timeout_sec: 10,
            extra_config: Vec::new(),
            init_reply: InitReply::Spec,
            approval: Approval::Auto,
            approved_serials: Vec::new(),
            known_serials: None,
            required_capabilities: [
                "DeviceType",
                "FirmVer",
                "PushVersion",
                "LockCount",
                "ReaderCount",
                "AuxInCount",
                "AuxOutCount",
                "MachineType",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            token_check: true,
            cmd_format: CmdFormatChoice::AsRegistered,
            max_commands_per_poll: None,
            resend_until_result: true,
            devicecmd_first_result_only: false,
            ack_mode: AckMode::Spec,
            reject_count_mismatch: true,
            line_ending: LineEnding::Lf,
            final_newline: false,
            framing: Framing::ContentLength,
            content_type: "text/plain;charset=UTF-8".into(),
            server_header: "lintel-refserver".into(),
            extra_set_cookies: Vec::new(),
            session_cookie_on_registry: true,
            rotate_session_on_push: false,
            rotate_session_on_init: false,
            id_style: IdStyle::Sequential,
            missing_endpoints: Vec::new(),
            clock: Clock::System,
            server_tz: Some("+0000".into()),
            admin: false,
            initial_commands: Vec::new(),
            encryption: Encryption::Off,
            rtlog_first_line_only: false,
            extra_user_fields: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Joins reply lines with the configured line ending.
    pub fn join_lines<S: AsRef<str>>(&self, lines: &[S]) -> String {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push_str(self.separator(i - 1));
            }
            out.push_str(line.as_ref());
        }
        if self.final_newline && !lines.is_empty() {
            out.push_str(self.separator(lines.len() - 1));
        }
        out
    }

    fn separator(&self, index: usize) -> &'static str {
        match self.line_ending {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::CrLfLf => "\r\n\n",
            LineEnding::Mixed => {
                if index % 2 == 0 {
                    "\r\n"
                } else {
                    "\n"
                }
            }
        }
    }
}

/// Helpers for command texts in the odd shapes some servers send; queue the
/// returned text with `RefServer::queue_command`.
pub mod commands {
    /// `DATA UPDATE <table> k=v\tk=v`, with `table_sep` after the table name
    /// (`' '` per spec, `'\t'` on some servers) and `field_sep` between fields
    /// (`'\t'` per spec, `' '` on some servers).
    pub fn data_update(
        table: &str,
        fields: &[(&str, &str)],
        table_sep: char,
        field_sep: char,
    ) -> String {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "DATA UPDATE {table}{table_sep}{}",
            body.join(&field_sep.to_string())
        )
    }

    /// A user record as ZKTeco's own server demo sends it to C3/inBio
    /// panels: 12.1.1.1's fields plus `SuperAuthorize` and `Disable`, which
    /// the spec's user table does not list.
    pub fn c3_user(pin: &str, card: u64, name: &str) -> String {
        format!(
            "DATA UPDATE user CardNo={card}\tPin={pin}\tPassword=\tGroup=0\tStartTime=0\tEndTime=0\tName={name}\tSuperAuthorize=0\tDisable=0"
        )
    }

    /// A door permission as servers written for one-door terminals send it:
    /// no `AuthorizeDoorId` and no `DevID`.
    pub fn userauthorize_without_door(pin: &str, timezone: u32) -> String {
        format!("DATA UPDATE userauthorize Pin={pin}\tAuthorizeTimezoneId={timezone}")
    }

    /// How many deployed servers enrol a person: the C3 user record and a
    /// permission on time rule 1 without a door, and no `timezone` ever:
    /// they rely on the panel's factory rule 1 ("accessible 24 hours").
    pub fn deployed_enrolment(pin: &str, card: u64, name: &str) -> Vec<String> {
        vec![c3_user(pin, card, name), userauthorize_without_door(pin, 1)]
    }

    /// `CONTROL DEVICE 01<door>01<secs>` (8 hex digits), or with the operator
    /// byte appended (10 hex digits) when `operator` is given.
    pub fn open_door(door: u8, seconds: u8, operator: Option<u8>) -> String {
        match operator {
            Some(op) => format!("CONTROL DEVICE 01{door:02X}01{seconds:02X}{op:02X}"),
            None => format!("CONTROL DEVICE 01{door:02X}01{seconds:02X}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_lines_per_ending() {
        let mut cfg = ServerConfig::default();
        assert_eq!(cfg.join_lines(&["a", "b", "c"]), "a\nb\nc");
        cfg.final_newline = true;
        cfg.line_ending = LineEnding::CrLfLf;
        assert_eq!(cfg.join_lines(&["a", "b"]), "a\r\n\nb\r\n\n");
        cfg.line_ending = LineEnding::Mixed;
        assert_eq!(cfg.join_lines(&["a", "b", "c"]), "a\r\nb\nc\r\n");
    }

    #[test]
    fn command_helpers() {
        assert_eq!(commands::open_door(1, 5, None), "CONTROL DEVICE 01010105");
        assert_eq!(
            commands::open_door(1, 5, Some(0)),
            "CONTROL DEVICE 0101010500"
        );
        assert_eq!(
            commands::data_update("user", &[("Pin", "1"), ("Name", "A B")], '\t', ' '),
            "DATA UPDATE user\tPin=1 Name=A B"
        );
        let enrol = commands::deployed_enrolment("2001", 4660, "Alice Smith");
        assert_eq!(
            enrol,
            [
                "DATA UPDATE user CardNo=4660\tPin=2001\tPassword=\tGroup=0\tStartTime=0\tEndTime=0\tName=Alice Smith\tSuperAuthorize=0\tDisable=0",
                "DATA UPDATE userauthorize Pin=2001\tAuthorizeTimezoneId=1",
            ]
        );
    }
}
