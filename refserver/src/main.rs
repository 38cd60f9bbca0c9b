//! `push-server`: the reference PUSH server as a program, for the demo and
//! for people poking at a device by hand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use lintel_refserver::{
    AckMode, Approval, CmdFormat, CmdFormatChoice, Framing, IdStyle, InitReply, LineEnding,
    RefServer, ServerConfig, State, VersionKey,
};

const AFTER_HELP: &str = "\
ADMIN ENDPOINTS (unless --no-admin), e.g. with curl:
  curl -X POST --data-binary 'CONTROL DEVICE 01010105' 'http://HOST:PORT/admin/queue?SN=X'
        queue commands (one per line; \\t and \\n in a line stand for TAB and LF); answers the IDs
  curl 'http://HOST:PORT/admin/pending?SN=X'    commands waiting for a result
  curl 'http://HOST:PORT/admin/results?SN=X'    command results
  curl 'http://HOST:PORT/admin/uploads?SN=X'    uploads with their bodies
  curl -X POST 'http://HOST:PORT/admin/approve?SN=X'   approve a serial (--serial-approval manual)
  curl -X POST 'http://HOST:PORT/admin/forget'  forget registrations (like a restarted server)
  curl -X POST 'http://HOST:PORT/admin/renumber'  drop the queues, number commands from 1 again
  curl 'http://HOST:PORT/admin/serials'         serials seen

SCRIPT FILE (--script): one command text per line, queued for each serial when
it first contacts the server. Empty lines and lines starting with # are skipped;
\\t and \\n stand for TAB and LF. Example:
  DATA UPDATE user CardNo=123\\tPin=1\\tPassword=\\tGroup=0\\tStartTime=0\\tEndTime=0\\tName=Ann\\tPrivilege=0
  DATA UPDATE userauthorize Pin=1\\tAuthorizeTimezoneId=1\\tAuthorizeDoorId=1

Every request is printed on stdout; rtlog events are printed one per line.";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EncryptionArg {
    Off,
    Supported,
    Required,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ApprovalArg {
    Auto,
    Manual,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CmdFormatArg {
    /// Follow the device's CmdFormat= registry value.
    Auto,
    /// C:<id>:<command>
    Plain,
    /// DataType=1,SN=..,Priority=0,CmdID=..,CmdDesc=C:<id>:<command>
    Prefixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AckArg {
    Spec,
    Ok,
    OkCount,
    TableCount,
    EchoCount,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LineEndingArg {
    Lf,
    Crlf,
    CrlfLf,
    Mixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FramingArg {
    Length,
    Close,
    Chunked,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InitArg {
    /// OK until registered, then the registry=ok block.
    Spec,
    /// Always the registry=ok block (never expects /iclock/registry).
    Block,
    /// Always a bare OK.
    Ok,
}

/// Reference Security PUSH 3.1.2 server (strict by default).
#[derive(Debug, Parser)]
#[command(name = "push-server", version, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: std::net::SocketAddr,
    /// Accept registrations automatically or only for approved serials.
    #[arg(long, value_enum, default_value = "auto")]
    serial_approval: ApprovalArg,
    /// Serial approved in advance (repeatable).
    #[arg(long = "approve", value_name = "SN")]
    approve: Vec<String>,
    /// Command format in getrequest answers.
    #[arg(long, value_enum, default_value = "auto")]
    cmd_format: CmdFormatArg,
    /// Upload acknowledgement form.
    #[arg(long, value_enum, default_value = "spec")]
    ack_mode: AckArg,
    /// Line endings of text replies.
    #[arg(long, value_enum, default_value = "lf")]
    line_ending: LineEndingArg,
    /// End text replies with a line ending too.
    #[arg(long)]
    final_newline: bool,
    /// Response framing.
    #[arg(long, value_enum, default_value = "length")]
    framing: FramingArg,
    /// Init (options=all) reply behaviour.
    #[arg(long, value_enum, default_value = "spec")]
    init_reply: InitArg,
    /// Do not check tokens.
    #[arg(long)]
    no_token_check: bool,
    /// Most commands per getrequest answer (default: all).
    #[arg(long, value_name = "N")]
    max_per_poll: Option<usize>,
    /// Send each command once instead of until its result arrives.
    #[arg(long)]
    no_resend: bool,
    /// Take only the first result line of a devicecmd POST.
    #[arg(long)]
    first_result_only: bool,
    /// Use large, time-based, non-monotonic command IDs.
    #[arg(long)]
    time_ids: bool,
    /// Announce the version as PushVersion instead of PushProtVer.
    #[arg(long)]
    push_version_key: bool,
    /// Encrypted PUSH (docs/encrypted-push.md).
    #[arg(long, value_enum, default_value = "off")]
    encryption: EncryptionArg,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM PKCS#8 private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// RequestDelay (s) sent to devices.
    #[arg(long, default_value_t = 2)]
    request_delay: u32,
    /// Commands queued for each serial on first contact (see below).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Queue the --script commands only for this serial (at start-up; they
    /// wait until it connects) instead of for every serial.
    #[arg(long, value_name = "SN", requires = "script")]
    script_sn: Option<String>,
    /// Disable the /admin endpoints.
    #[arg(long)]
    no_admin: bool,
    /// Read only the first record of each rtlog POST, as some servers do.
    #[arg(long)]
    rtlog_first_line_only: bool,
    /// ServerTZ of the rtdata type=time answer (+HHMM), e.g. "$(date +%z)";
    /// "none" leaves it out.
    #[arg(long, default_value = "+0000", value_name = "ZONE")]
    server_tz: String,
}

fn config_from(args: &Args) -> anyhow_free::Result<ServerConfig> {
    let mut cfg = ServerConfig {
        approval: match args.serial_approval {
            ApprovalArg::Auto => Approval::Auto,
            ApprovalArg::Manual => Approval::Manual,
        },
        approved_serials: args.approve.clone(),
        cmd_format: match args.cmd_format {
            CmdFormatArg::Auto => CmdFormatChoice::AsRegistered,
            CmdFormatArg::Plain => CmdFormatChoice::Force(CmdFormat::Plain),
            CmdFormatArg::Prefixed => CmdFormatChoice::Force(CmdFormat::Prefixed),
        },
        ack_mode: match args.ack_mode {
            AckArg::Spec => AckMode::Spec,
            AckArg::Ok => AckMode::Ok,
            AckArg::OkCount => AckMode::OkCount,
            AckArg::TableCount => AckMode::TableCount,
            AckArg::EchoCount => AckMode::EchoQueryCount,
        },
        line_ending: match args.line_ending {
            LineEndingArg::Lf => LineEnding::Lf,
            LineEndingArg::Crlf => LineEnding::CrLf,
            LineEndingArg::CrlfLf => LineEnding::CrLfLf,
            LineEndingArg::Mixed => LineEnding::Mixed,
        },
        final_newline: args.final_newline,
        framing: match args.framing {
            FramingArg::Length => Framing::ContentLength,
            FramingArg::Close => Framing::CloseDelimited,
            FramingArg::Chunked => Framing::Chunked,
        },
        init_reply: match args.init_reply {
            InitArg::Spec => InitReply::Spec,
            InitArg::Block => InitReply::AlwaysBlock,
            InitArg::Ok => InitReply::AlwaysOk,
        },
        token_check: !args.no_token_check,
        max_commands_per_poll: args.max_per_poll,
        resend_until_result: !args.no_resend,
        devicecmd_first_result_only: args.first_result_only,
        id_style: if args.time_ids {
            IdStyle::TimeBased
        } else {
            IdStyle::Sequential
        },
        version_key: if args.push_version_key {
            VersionKey::PushVersion
        } else {
            VersionKey::PushProtVer
        },
        request_delay: args.request_delay,
        encryption: match args.encryption {
            EncryptionArg::Off => lintel_refserver::Encryption::Off,
            EncryptionArg::Supported => lintel_refserver::Encryption::Supported,
            EncryptionArg::Required => lintel_refserver::Encryption::Required,
        },
        admin: !args.no_admin,
        server_tz: (args.server_tz != "none").then(|| args.server_tz.clone()),
        rtlog_first_line_only: args.rtlog_first_line_only,
        ..ServerConfig::default()
    };
    if let Some(path) = &args.script {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
        cfg.initial_commands = script_commands(&text);
    }
    Ok(cfg)
}

/// Command texts of a script file: one per line, `#` comments, `\t`/`\n` escapes.
fn script_commands(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.replace("\\t", "\t").replace("\\n", "\n"))
        .collect()
}

/// Tiny error alias so `main` can report a message and exit non-zero.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, String>;
}

/// Short names for the common Appendix 2 event codes.
fn event_name(code: &str) -> &'static str {
    match code.trim() {
        "0" => "door opened after verification",
        "1" => "verified during normal-open period",
        "2" => "first user opened",
        "3" => "multi-user opened",
        "4" => "emergency password",
        "5" => "opened in normal-open period",
        "6" => "linkage triggered",
        "7" => "alarm cancelled",
        "8" => "remote open",
        "9" => "remote close",
        "20" => "interval too short",
        "21" => "outside valid time period",
        "22" => "invalid time period",
        "23" => "unauthorized access",
        "24" => "anti-passback",
        "25" => "interlock",
        "27" => "not registered",
        "28" => "door open timeout",
        "29" => "privilege expired",
        "30" => "wrong password",
        "102" => "door forced open",
        "200" => "door opened",
        "201" => "door closed",
        "202" => "exit button",
        "206" => "device started",
        _ => "",
    }
}

fn print_new(state: &State, from: usize) {
    for req in state.requests().iter().skip(from) {
        let sn = req.sn().unwrap_or("-");
        let query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "SN")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let token = match req.token {
            Some(t) => format!(" token={t:?}"),
            None => String::new(),
        };
        println!(
            "[{sn}] {} {}{}{} -> {}{token}",
            req.method,
            req.path,
            if query.is_empty() { "" } else { "?" },
            query.join("&"),
            req.status
        );
        if req.path == "/iclock/devicecmd" {
            for line in String::from_utf8_lossy(&req.body).lines() {
                println!("    result: {line}");
            }
        }
        let is_rtlog = req
            .query_value("table")
            .is_some_and(|t| t.eq_ignore_ascii_case("rtlog"));
        if is_rtlog && req.status == 200 {
            for line in String::from_utf8_lossy(&req.body)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let rec = lintel_refserver::Record::parse(line, '\t');
                let event = rec.get("event").unwrap_or("?");
                println!(
                    "    EVENT {} door={} pin={} card={} event={} {} verify={}",
                    rec.get("time").unwrap_or("?"),
                    rec.get("eventaddr").unwrap_or("?"),
                    rec.get("pin").unwrap_or("?"),
                    rec.get("cardno").unwrap_or("?"),
                    event,
                    event_name(event),
                    rec.get("verifytype").unwrap_or("?"),
                );
            }
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let cfg = match config_from(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("push-server: {e}");
            std::process::exit(2);
        }
    };
    let mut cfg = cfg;
    let for_one_serial = args
        .script_sn
        .as_ref()
        .map(|sn| (sn.clone(), std::mem::take(&mut cfg.initial_commands)));
    let script_len = cfg.initial_commands.len();
    let started = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => lintel_refserver::TlsIdentity::from_pem_files(cert, key)
            .and_then(|identity| RefServer::start_tls_on(args.listen, cfg, &identity)),
        _ => RefServer::start_on(args.listen, cfg),
    };
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("push-server: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("push-server listening on {}", server.url());
    if let Some((sn, commands)) = for_one_serial {
        for command in &commands {
            let id = server.queue_command(&sn, command);
            println!("queued C:{id}:{} for {sn}", command.escape_debug());
        }
    }
    if script_len > 0 {
        println!("{script_len} script command(s) will be queued for each serial on first contact");
    }
    let mut seen = 0;
    loop {
        server.wait_for(Duration::from_secs(1), |s| s.requests().len() > seen);
        seen = server.with_state(|s| {
            print_new(s, seen);
            s.requests().len()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_and_escapes() {
        let cmds = script_commands(
            "# enrol\n\nDATA UPDATE user Pin=1\\tCardNo=123\r\nCONTROL DEVICE 01010105\n",
        );
        assert_eq!(
            cmds,
            vec![
                "DATA UPDATE user Pin=1\tCardNo=123",
                "CONTROL DEVICE 01010105"
            ]
        );
    }

    #[test]
    fn args_map_to_config() {
        let args = Args::parse_from([
            "push-server",
            "--serial-approval",
            "manual",
            "--cmd-format",
            "prefixed",
            "--no-token-check",
            "--rtlog-first-line-only",
            "--server-tz",
            "+0800",
        ]);
        let cfg = config_from(&args).unwrap();
        assert_eq!(cfg.approval, Approval::Manual);
        assert_eq!(cfg.cmd_format, CmdFormatChoice::Force(CmdFormat::Prefixed));
        assert!(!cfg.token_check);
        assert!(cfg.admin);
        assert!(cfg.rtlog_first_line_only);
        assert_eq!(cfg.server_tz.as_deref(), Some("+0800"));
    }
}
