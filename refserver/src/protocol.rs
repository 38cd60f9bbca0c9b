//! The PUSH server logic, sans I/O: a parsed request and the state in, a
//! response out. Faults and byte-level misbehaviour live in `server.rs`.
//!
//! Token policy (spec 7.5 says the token is `md5(RegistryCode+SN+SessionID)`
//! and is used "for all subsequent requests"):
//! - the init `GET /iclock/cdata?options=all` and `POST /iclock/registry`
//!   need no token: before them the device knows neither value;
//! - `POST /iclock/push` may come without a token, or with one computed with
//!   an empty SessionID (the registry reply carries no SessionID in its body),
//!   or with the full token; a token of any other value is refused (401);
//! - every other `/iclock/` request needs the full token (401 otherwise)
//!   unless `token_check` is off. Files served outside `/iclock/` need none.
//!
//! The check result is recorded for every request either way.

use std::time::UNIX_EPOCH;

use crate::config::{
    AckMode, Approval, CmdFormat, CmdFormatChoice, InitReply, ServerConfig, VersionKey,
};
use crate::http::{Request, Response};
use crate::queue::queue;
use crate::state::{CommandResult, Record, Registration, Session, State, TokenCheck, Upload};

/// A response plus the token check result for the request log.
pub(crate) struct Handled {
    pub response: Response,
    pub token: Option<TokenCheck>,
}

impl Handled {
    fn new(response: Response, token: Option<TokenCheck>) -> Self {
        Handled { response, token }
    }
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::new(status, body.into().into_bytes())
}

/// A one-line 200 reply, ended as configured (`OK`, `OK\r\n`, ...).
fn reply_line(cfg: &ServerConfig, line: impl Into<String>) -> Response {
    text(200, cfg.join_lines(&[line.into()]))
}

/// An HTML error page, as Java servlet containers send for 401/404/406.
pub(crate) fn html_error(status: u16, message: &str) -> Response {
    let reason = crate::http::reason(status);
    Response::new(
        status,
        format!("<html><head><title>{status} {reason}</title></head><body><h1>HTTP Status {status} - {reason}</h1><p>{message}</p></body></html>")
            .into_bytes(),
    )
    .with_header("Content-Type", "text/html;charset=utf-8")
}

/// The `token` value of a Cookie header; cookies may be separated by `;` or
/// by `,` (the spec writes `Cookie: token=.., timestamp=..`).
pub(crate) fn cookie_token(req: &Request) -> Option<String> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split([';', ',']))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| k.trim() == "token")
        .map(|(_, v)| v.trim().to_string())
}

fn check_token(state: &State, sn: &str, req: &Request) -> TokenCheck {
    let Some(sent) = cookie_token(req) else {
        return TokenCheck::Missing;
    };
    match state.session(sn) {
        Some(s) if s.token(sn).eq_ignore_ascii_case(&sent) => TokenCheck::Valid,
        _ => TokenCheck::Invalid,
    }
}

pub(crate) fn handle(state: &mut State, cfg: &ServerConfig, req: &Request, seq: u64) -> Handled {
    if cfg.missing_endpoints.iter().any(|p| p == &req.path) {
        return Handled::new(
            html_error(
                404,
                &format!("{} is not available on this server", req.path),
            ),
            None,
        );
    }
    if cfg.admin && req.path.starts_with("/admin/") {
        return Handled::new(crate::admin::handle(state, cfg, req), None);
    }
    if !req.path.starts_with("/iclock/") {
        return Handled::new(serve_registered_file(state, req), None);
    }
    let Some(sn) = req
        .query_value("SN")
        .map(str::to_string)
        .filter(|s| !s.is_empty())
    else {
        return Handled::new(text(400, "SN missing"), None);
    };
    if let Some(known) = &cfg.known_serials {
        if !known.iter().any(|k| k == &sn) {
            return Handled::new(html_error(401, &format!("unknown serial {sn}")), None);
        }
    }
    first_contact(state, cfg, &sn);
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), req.path.as_str()) {
        ("GET", "/iclock/cdata") if req.query_value("options").is_some() => {
            init(state, cfg, &sn, req)
        }
        ("POST", "/iclock/registry") => registry(state, cfg, &sn, req),
        ("POST", "/iclock/push") | ("GET", "/iclock/push") => push(state, cfg, &sn, req),
        _ => {
            let token = check_token(state, &sn, req);
            if cfg.token_check && token != TokenCheck::Valid {
                let why = if state.session(&sn).is_none() {
                    format!("serial {sn} has no session: initialise and register first")
                } else {
                    format!("token {token:?} for serial {sn}")
                };
                return Handled::new(html_error(401, &why), Some(token));
            }
            let response = match (method.as_str(), req.path.as_str()) {
                ("GET", "/iclock/getrequest") => getrequest(state, cfg, &sn),
                ("POST", "/iclock/devicecmd") => devicecmd(state, cfg, &sn, req),
                ("POST", "/iclock/cdata") | ("POST", "/iclock/querydata") => {
                    upload(state, cfg, &sn, req, seq, token)
                }
                ("POST", "/iclock/file") | ("POST", "/iclock/fdata") => {
                    upload(state, cfg, &sn, req, seq, token)
                }
                ("GET", "/iclock/ping") => reply_line(cfg, "OK"),
                ("GET", "/iclock/rtdata") => rtdata(cfg, req),
                ("GET", "/iclock/file") => iclock_file(state, req),
                _ => html_error(404, &format!("no handler for {} {}", req.method, req.path)),
            };
            Handled::new(response, Some(token))
        }
    }
}

fn first_contact(state: &mut State, cfg: &ServerConfig, sn: &str) {
    if state.devices.contains_key(sn) {
        return;
    }
    state.device_mut(sn);
    for command in &cfg.initial_commands {
        queue(state, cfg, sn, command);
    }
}

fn version_key(cfg: &ServerConfig) -> &'static str {
    match cfg.version_key {
        VersionKey::PushProtVer => "PushProtVer",
        VersionKey::PushVersion => "PushVersion",
    }
}

/// The config lines shared by the init block (7.1) and the push reply (7.5).
fn config_lines(cfg: &ServerConfig, session_id: &str, push_reply: bool) -> Vec<String> {
    let mut lines = vec![
        format!("ServerVersion={}", cfg.server_version),
        format!("ServerName={}", cfg.server_name),
        format!("{}={}", version_key(cfg), cfg.push_prot_ver),
        format!("ErrorDelay={}", cfg.error_delay),
        format!("RequestDelay={}", cfg.request_delay),
        format!("TransTimes={}", cfg.trans_times),
        format!("TransInterval={}", cfg.trans_interval),
        format!("TransTables={}", cfg.trans_tables),
        format!("Realtime={}", cfg.realtime),
        format!("SessionID={session_id}"),
        format!("TimeoutSec={}", cfg.timeout_sec),
    ];
    if push_reply {
        // 7.5 lists these only for the push reply; this server supports no
        // biometrics, which is what "0" says.
        lines.push("BioPhotoFun=0".into());
        lines.push("BioDataFun=0".into());
        lines.push("MultiBioDataSupport=0:0:0:0:0:0:0:0:0:0".into());
        lines.push("MultiBioPhotoSupport=0:0:0:0:0:0:0:0:0:0".into());
    }
    lines.extend(cfg.extra_config.iter().map(|(k, v)| format!("{k}={v}")));
    lines
}

fn new_session(state: &mut State, sn: &str, registry_code: String) -> Session {
    let session = Session {
        registry_code,
        session_id: state.random_session_id(),
    };
    state.device_mut(sn).session = Some(session.clone());
    session
}

/// 7.1: `OK` for an unregistered device, the `registry=ok` block otherwise.
fn init(state: &mut State, cfg: &ServerConfig, sn: &str, req: &Request) -> Handled {
    let token = cookie_token(req).map(|_| check_token(state, sn, req));
    let registered = state.registration(sn).is_some();
    let give_block = match cfg.init_reply {
        InitReply::AlwaysOk => false,
        InitReply::Spec => registered,
        InitReply::AlwaysBlock => true,
    };
    if !give_block {
        if cfg.encryption != crate::config::Encryption::Off {
            // docs/encrypted-push.md: an encrypting server names its version
            // in every init answer, so an unregistered device can exchange.
            let lines = [
                "OK".to_string(),
                format!("{}={}", version_key(cfg), cfg.push_prot_ver),
            ];
            return Handled::new(text(200, cfg.join_lines(&lines)), token);
        }
        return Handled::new(reply_line(cfg, "OK"), token);
    }
    if !registered {
        // AlwaysBlock: register on the spot with no capability line.
        let code = state.random_code(10);
        state.device_mut(sn).registration = Some(Registration {
            sn: sn.to_string(),
            raw: String::new(),
            capabilities: Record::default(),
            registry_code: code,
        });
    }
    let code = state
        .registration(sn)
        .map(|r| r.registry_code.clone())
        .unwrap_or_default();
    let session = match state.session(sn) {
        Some(s) if !cfg.rotate_session_on_init && s.registry_code == code => s.clone(),
        _ => new_session(state, sn, code.clone()),
    };
    let mut lines = vec!["registry=ok".to_string(), format!("RegistryCode={code}")];
    lines.extend(config_lines(cfg, &session.session_id, false));
    Handled::new(text(200, cfg.join_lines(&lines)), token)
}

/// 7.4: validate and record the capability line, answer a new RegistryCode.
fn registry(state: &mut State, cfg: &ServerConfig, sn: &str, req: &Request) -> Handled {
    let token = cookie_token(req).map(|_| check_token(state, sn, req));
    if cfg.approval == Approval::Manual
        && !state.approved.contains(sn)
        && !cfg.approved_serials.iter().any(|s| s == sn)
    {
        return Handled::new(
            html_error(
                406,
                &format!(
                    "registration of serial {sn} is pending: approve serial {sn} on the server"
                ),
            ),
            token,
        );
    }
    let raw = String::from_utf8_lossy(&req.body).trim().to_string();
    let capabilities = Record::parse(&raw, ',');
    let missing: Vec<&str> = cfg
        .required_capabilities
        .iter()
        .map(String::as_str)
        .filter(|k| {
            let bare = k.trim_start_matches('~');
            capabilities.get(bare).is_none() && capabilities.get(&format!("~{bare}")).is_none()
        })
        .collect();
    if missing.is_empty()
        && capabilities
            .get("DeviceType")
            .is_some_and(|t| t.trim().is_empty())
    {
        return Handled::new(html_error(406, "DeviceType is empty"), token);
    }
    if !missing.is_empty() {
        return Handled::new(
            html_error(406, &format!("registry line lacks {}", missing.join(", "))),
            token,
        );
    }
    let code = state.random_code(10);
    let session = new_session(state, sn, code.clone());
    state.device_mut(sn).registration = Some(Registration {
        sn: sn.to_string(),
        raw,
        capabilities,
        registry_code: code.clone(),
    });
    let mut resp = reply_line(cfg, format!("RegistryCode={code}"));
    if cfg.session_cookie_on_registry {
        resp = resp.with_header(
            "Set-Cookie",
            format!("JSESSIONID={}; Path=/; HttpOnly", session.session_id),
        );
    }
    Handled::new(resp, token)
}

/// 7.5: the configuration block for a registered device.
fn push(state: &mut State, cfg: &ServerConfig, sn: &str, req: &Request) -> Handled {
    let Some(code) = state.registration(sn).map(|r| r.registry_code.clone()) else {
        let token = cookie_token(req).map(|_| TokenCheck::Invalid);
        return Handled::new(
            html_error(406, &format!("serial {sn} pushed before registering")),
            token,
        );
    };
    let token = match cookie_token(req) {
        None => None,
        Some(sent) => {
            let with_session = state.session(sn).map(|s| s.token(sn));
            let without_session = crate::state::md5_hex(&format!("{code}{sn}"));
            let ok = with_session.is_some_and(|t| t.eq_ignore_ascii_case(&sent))
                || without_session.eq_ignore_ascii_case(&sent);
            Some(if ok {
                TokenCheck::Valid
            } else {
                TokenCheck::Invalid
            })
        }
    };
    if cfg.token_check && token == Some(TokenCheck::Invalid) {
        return Handled::new(
            html_error(401, &format!("bad token for serial {sn}")),
            token,
        );
    }
    let session = match state.session(sn) {
        Some(s) if !cfg.rotate_session_on_push && s.registry_code == code => s.clone(),
        _ => new_session(state, sn, code),
    };
    Handled::new(
        text(
            200,
            cfg.join_lines(&config_lines(cfg, &session.session_id, true)),
        ),
        token,
    )
}

fn cmd_format(state: &State, cfg: &ServerConfig, sn: &str) -> CmdFormat {
    match cfg.cmd_format {
        CmdFormatChoice::Force(f) => f,
        CmdFormatChoice::AsRegistered => {
            match state.registration(sn).and_then(|r| r.get("CmdFormat")) {
                Some(v) if v.trim() == "1" => CmdFormat::Prefixed,
                _ => CmdFormat::Plain,
            }
        }
    }
}

/// 11.1: pending commands, or `OK` when there are none.
fn getrequest(state: &mut State, cfg: &ServerConfig, sn: &str) -> Response {
    let format = cmd_format(state, cfg, sn);
    let limit = cfg.max_commands_per_poll.unwrap_or(usize::MAX);
    let device = state.device_mut(sn);
    let mut lines = Vec::new();
    for cmd in device.queue.iter_mut() {
        if lines.len() >= limit {
            break;
        }
        if cmd.deliveries > 0 && !cfg.resend_until_result {
            continue;
        }
        cmd.deliveries += 1;
        let text = with_extra_user_fields(&cmd.text, &cfg.extra_user_fields);
        lines.push(match format {
            CmdFormat::Plain => format!("C:{}:{text}", cmd.id),
            CmdFormat::Prefixed => format!(
                "DataType=1,SN={sn},Priority=0,CmdID={},CmdDesc=C:{}:{text}",
                cmd.id, cmd.id
            ),
        });
    }
    if lines.is_empty() {
        return reply_line(cfg, "OK");
    }
    text(200, cfg.join_lines(&lines))
}

/// A `DATA UPDATE user` command with `extra` appended to each record that
/// lacks the field; any other command as it is.
fn with_extra_user_fields(text: &str, extra: &[(String, String)]) -> String {
    let lower = text.to_ascii_lowercase();
    let is_user_update =
        lower.starts_with("data update user ") || lower.starts_with("data update user\t");
    if extra.is_empty() || !is_user_update {
        return text.to_string();
    }
    text.split('\n')
        .map(|record| {
            let mut line = record.trim_end_matches('\r').to_string();
            for (k, v) in extra {
                let has = line.split(['\t', ' ']).any(|f| {
                    f.split('=')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case(k))
                });
                if !has {
                    line.push_str(&format!("\t{k}={v}"));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses `ID=..&Return=..&CMD=..[&more]`.
fn parse_result(line: &str) -> Option<CommandResult> {
    let mut id = None;
    let mut ret = None;
    let mut cmd = None;
    let mut extra = Vec::new();
    for piece in line.split('&') {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        match k {
            "ID" if id.is_none() => id = Some(v.to_string()),
            "Return" if ret.is_none() => ret = Some(v.trim().parse::<i64>().ok()?),
            "CMD" if cmd.is_none() => cmd = Some(v.to_string()),
            _ => extra.push((k.to_string(), v.to_string())),
        }
    }
    Some(CommandResult {
        id: id.filter(|i| !i.is_empty())?,
        ret: ret?,
        cmd: cmd.unwrap_or_default(),
        extra,
        raw: line.to_string(),
        was_queued: false,
    })
}

/// 10.4: record each result line, drop answered commands from the queue.
fn devicecmd(state: &mut State, cfg: &ServerConfig, sn: &str, req: &Request) -> Response {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let mut lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if cfg.devicecmd_first_result_only {
        lines.truncate(1);
    }
    let mut parsed = Vec::new();
    for line in lines {
        match parse_result(line) {
            Some(r) => parsed.push(r),
            None => return text(400, format!("malformed result line {line:?}")),
        }
    }
    let device = state.device_mut(sn);
    for mut result in parsed {
        let before = device.queue.len();
        device.queue.retain(|c| c.id != result.id);
        result.was_queued = device.queue.len() != before;
        device.results.push(result);
    }
    reply_line(cfg, "OK")
}

/// Parses an upload body into records according to where it was posted.
/// Returns an error text for a body a strict server refuses.
fn parse_records(req: &Request, body: &[u8]) -> Result<Vec<Record>, String> {
    let path = req.path.as_str();
    let table = req.query_value("table").map(str::to_ascii_lowercase);
    let kind = req.query_value("type").map(str::to_ascii_lowercase);
    let tablename = req.query_value("tablename");
    if path == "/iclock/file" || path == "/iclock/fdata" {
        return Ok(Vec::new());
    }
    if path == "/iclock/querydata" && req.query_value("datafmt") == Some("3") {
        // ACCOUNT (12.2.1): `name=..\nsize=..\ndatacode=base64\ndatatype=tgz\0<data>`.
        let head_end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        let head = String::from_utf8_lossy(&body[..head_end]);
        return Ok(vec![Record::parse(&head.replace("\r\n", "\n"), '\n')]);
    }
    let text = String::from_utf8_lossy(body);
    let comma_separated = table.as_deref() == Some("options") || kind.as_deref() == Some("options");
    if comma_separated {
        let joined: String = text.lines().collect::<Vec<_>>().join(",");
        return Ok(vec![Record::parse(&joined, ',')]);
    }
    if table.is_none() && kind.is_none() {
        // ACCOUNT overview (12.2.2): `SumCount=..` lines.
        return Ok(vec![Record::parse(&text, '\n')]);
    }
    let is_tabledata =
        table.as_deref() == Some("tabledata") || kind.as_deref() == Some("tabledata");
    let mut records = Vec::new();
    for (n, line) in text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
    {
        if line.trim().is_empty() {
            continue;
        }
        // ATTPHOTO records carry no table-name prefix (10.9's text and example).
        let prefixed = !tablename.is_some_and(|t| t.eq_ignore_ascii_case("ATTPHOTO"));
        let fields = if is_tabledata && prefixed {
            // Each record starts with the table name then SP or HT (10.5).
            let name = tablename.unwrap_or_default();
            match line
                .strip_prefix(name)
                .filter(|rest| rest.starts_with([' ', '\t']))
            {
                Some(rest) => &rest[1..],
                None => {
                    return Err(format!(
                        "record {} does not start with table name {name:?}",
                        n + 1
                    ))
                }
            }
        } else {
            line
        };
        records.push(Record::parse(fields, '\t'));
    }
    Ok(records)
}

/// 10.x / 12.1.3 / 12.1.4 / 12.2 / 12.5.2: record an upload and acknowledge it.
fn upload(
    state: &mut State,
    cfg: &ServerConfig,
    sn: &str,
    req: &Request,
    seq: u64,
    token: TokenCheck,
) -> Response {
    let mut parsed = parse_records(req, &req.body);
    let first_line_only = cfg.rtlog_first_line_only
        && req.path == "/iclock/cdata"
        && req
            .query_value("table")
            .is_some_and(|t| t.eq_ignore_ascii_case("rtlog"));
    if first_line_only {
        // The body is read as one record: whatever follows it is dropped.
        if let Ok(records) = &mut parsed {
            records.truncate(1);
        }
    }
    let records = parsed.clone().unwrap_or_default();
    let declared = req
        .query_value("count")
        .and_then(|c| c.trim().parse::<usize>().ok());
    let counts_records = req.path != "/iclock/file"
        && req.path != "/iclock/fdata"
        && req.query_value("datafmt") != Some("3");
    let count_matches = match declared {
        Some(c) if counts_records && parsed.is_ok() && !first_line_only => Some(c == records.len()),
        _ => None,
    };
    let table = if req.path == "/iclock/querydata" {
        req.query_value("type")
    } else {
        req.query_value("table")
    };
    let tablename = req.query_value("tablename");
    let n = if counts_records {
        records.len()
    } else {
        declared.unwrap_or(0)
    };
    let ack_table = tablename.or(table).unwrap_or("OK").to_string();
    let response = if let Err(why) = &parsed {
        text(400, why.clone())
    } else if count_matches == Some(false) && cfg.reject_count_mismatch {
        text(
            400,
            format!(
                "count={} but {} records received",
                declared.unwrap_or(0),
                records.len()
            ),
        )
    } else {
        match &cfg.ack_mode {
            AckMode::Spec => {
                let is_tabledata = table.is_some_and(|t| t.eq_ignore_ascii_case("tabledata"));
                if is_tabledata {
                    reply_line(cfg, format!("{ack_table}={n}"))
                } else {
                    reply_line(cfg, "OK")
                }
            }
            AckMode::Ok => reply_line(cfg, "OK"),
            AckMode::OkCount => reply_line(cfg, format!("OK: {n}")),
            AckMode::TableCount => reply_line(cfg, format!("{ack_table}={n}")),
            AckMode::EchoQueryCount => reply_line(
                cfg,
                format!("{ack_table}={}", req.query_value("count").unwrap_or("0")),
            ),
            AckMode::ErrorText(t) => reply_line(cfg, t.clone()),
        }
    };
    let accepted = response.status == 200 && !matches!(cfg.ack_mode, AckMode::ErrorText(_));
    state.device_mut(sn).uploads.push(Upload {
        seq,
        endpoint: req.path.clone(),
        query: req.query.clone(),
        table: table.map(str::to_string),
        tablename: tablename.map(str::to_string),
        records,
        raw: req.body.clone(),
        count_matches,
        accepted,
        token,
    });
    response
}

/// `GET /iclock/rtdata?type=time`: `DateTime=<Appendix 5 seconds of GMT>,ServerTZ=<zone>`.
fn rtdata(cfg: &ServerConfig, req: &Request) -> Response {
    if !req
        .query_value("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("time"))
    {
        return text(400, "rtdata answers type=time only");
    }
    let secs = cfg
        .clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut line = format!("DateTime={}", old_encode_time(secs));
    if let Some(tz) = &cfg.server_tz {
        line.push_str(&format!(",ServerTZ={tz}"));
    }
    reply_line(cfg, line)
}

/// Appendix 5 `OldEncodeTime` of a Unix time (UTC).
pub(crate) fn old_encode_time(unix_secs: u64) -> u64 {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let day_index = (y.saturating_sub(2000)) * 12 * 31 + (m - 1) * 31 + (d - 1);
    day_index * 86_400 + rem
}

/// Days since 1970-01-01 to (year, month, day) — Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `GET /iclock/file?SN=..&url=..` (12.4.1 methods 1 and 2): the file
/// registered under the URL's path (or under the whole URL).
fn iclock_file(state: &State, req: &Request) -> Response {
    let Some(url) = req.query_value("url") else {
        return text(400, "url missing");
    };
    let path = url_path(url);
    match state.files.get(&path).or_else(|| state.files.get(url)) {
        Some(bytes) => crate::range::serve(req, bytes),
        None => html_error(404, &format!("no file at {url}")),
    }
}

/// Any other path: a file registered with `serve_file` (12.4.1 method 3), else 404.
fn serve_registered_file(state: &State, req: &Request) -> Response {
    if !req.method.eq_ignore_ascii_case("GET") {
        return html_error(404, &format!("no handler for {} {}", req.method, req.path));
    }
    match state.files.get(&req.path) {
        Some(bytes) => crate::range::serve(req, bytes),
        None => html_error(404, &format!("no file at {}", req.path)),
    }
}

/// The path of `http://host:port/path?q` (or the text itself when it is a path).
/// Backslashes, as in the spec's method-1 example, count as slashes.
pub(crate) fn url_path(url: &str) -> String {
    let url = url.replace('\\', "/");
    let rest = match url.find("://") {
        Some(pos) => {
            let after = &url[pos + 3..];
            after.find('/').map_or("/", |i| &after[i..])
        }
        None => url.as_str(),
    };
    let path = rest.split('?').next().unwrap_or("/");
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines() {
        let r = parse_result(
            "ID=291&Return=41&CMD=ACCOUNT&transaction&StartTime=&EndTime=&RecordSum=41",
        )
        .unwrap();
        assert_eq!(
            (r.id.as_str(), r.ret, r.cmd.as_str()),
            ("291", 41, "ACCOUNT")
        );
        assert!(r
            .extra
            .contains(&("RecordSum".to_string(), "41".to_string())));
        assert!(parse_result("ID=1&Return=x&CMD=DATA").is_none());
        assert!(parse_result("Return=0&CMD=DATA").is_none());
    }

    #[test]
    fn extra_user_fields_go_on_every_user_record_that_lacks_them() {
        let extra = vec![
            ("SuperAuthorize".to_string(), "0".to_string()),
            ("Disable".to_string(), "0".to_string()),
        ];
        assert_eq!(
            with_extra_user_fields("DATA UPDATE user Pin=1\tName=A\nPin=2\tdisable=1", &extra),
            "DATA UPDATE user Pin=1\tName=A\tSuperAuthorize=0\tDisable=0\nPin=2\tdisable=1\tSuperAuthorize=0"
        );
        assert_eq!(
            with_extra_user_fields("DATA UPDATE userauthorize Pin=1", &extra),
            "DATA UPDATE userauthorize Pin=1"
        );
        assert_eq!(
            with_extra_user_fields("DATA UPDATE user Pin=1", &[]),
            "DATA UPDATE user Pin=1"
        );
    }

    #[test]
    fn appendix5_time() {
        // 2000-01-01 00:00:00 UTC is 946684800 and encodes to 0.
        assert_eq!(old_encode_time(946_684_800), 0);
        // 2017-01-10 11:49:32 UTC: year 17, month index 0, day index 9.
        let unix = 1_484_048_972;
        let expected = (17 * 12 * 31 + 9) * 86_400 + (11 * 60 + 49) * 60 + 32;
        assert_eq!(old_encode_time(unix), expected);
    }

    #[test]
    fn url_paths() {
        assert_eq!(
            url_path("http://192.168.0.13:89/data/emfw.cfg"),
            "/data/emfw.cfg"
        );
        assert_eq!(url_path("data/emfw.cfg"), "/data/emfw.cfg");
        assert_eq!(
            url_path("http*//localhost*8088\\fireware\\F20\\admin\\emfw.cfg"),
            "/http*//localhost*8088/fireware/F20/admin/emfw.cfg"
        );
    }

    #[test]
    fn cookie_forms() {
        let mut req = Request {
            method: "GET".into(),
            path: "/".into(),
            query: vec![],
            raw_query: String::new(),
            version: "HTTP/1.1".into(),
            headers: vec![("Cookie".into(), "token=abc, timestamp=1".into())],
            body: vec![],
        };
        assert_eq!(cookie_token(&req).as_deref(), Some("abc"));
        req.headers = vec![("cookie".into(), "other=1; token=def".into())];
        assert_eq!(cookie_token(&req).as_deref(), Some("def"));
        req.headers.clear();
        assert_eq!(cookie_token(&req), None);
    }
}
