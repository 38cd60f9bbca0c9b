//! `Test Host Address=IP:PORT` (12.3): whether this device can open a TCP
//! connection to the address the server names. Nothing is sent on the
//! connection, no program runs, and the wait is bounded.

use crate::commands::{CommandContext, CommandExecutor, CommandOutcome};
use crate::protocol::codes;
use crate::protocol::command::{Command, Verb};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The `Test Host` executor.
pub struct TestHostExecutor;

impl CommandExecutor for TestHostExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        matches!(verb, Verb::Other(name) if name.eq_ignore_ascii_case("Test Host"))
    }

    fn execute(&mut self, command: &Command, _ctx: &mut CommandContext<'_>) -> CommandOutcome {
        CommandOutcome::code(run(&command.rest, CONNECT_TIMEOUT))
    }
}

/// How long one attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Address` of the command: `host:port`, `[v6]:port`; a host name is
/// looked up. Err is the Return code.
pub fn parse_address(args: &str) -> Result<(String, u16), i64> {
    let value = args
        .split(['\t', ',', '&', ' '])
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("Address"))
        .map(|(_, v)| v.trim())
        .ok_or(codes::EMPTY_PARAMETER)?;
    if value.is_empty() {
        return Err(codes::EMPTY_PARAMETER);
    }
    let (host, port) = value.rsplit_once(':').ok_or(codes::BAD_DATA_FORMAT)?;
    let port: u16 = port.parse().map_err(|_| codes::BAD_DATA_FORMAT)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let plain = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if port == 0 || !plain {
        return Err(codes::BAD_DATA_FORMAT);
    }
    Ok((host.to_owned(), port))
}

/// Runs the test: 0 when a connection opened, -730 ("no response from the
/// server") when none did within `timeout` for any address of the host.
pub fn run(args: &str, timeout: Duration) -> i64 {
    let (host, port) = match parse_address(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.take(4).collect(),
        Err(e) => {
            log::info!("Test Host {host}:{port}: cannot resolve ({e})");
            return codes::NO_SERVER_RESPONSE;
        }
    };
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(_) => {
                log::info!("Test Host {a}: connected");
                return codes::OK;
            }
            Err(e) => log::info!("Test Host {a}: {e}"),
        }
    }
    codes::NO_SERVER_RESPONSE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_bad_ones_get_their_codes() {
        assert_eq!(
            parse_address("Address=110.80.38.74:8092"),
            Ok(("110.80.38.74".into(), 8092))
        );
        assert_eq!(parse_address("address=[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(parse_address(""), Err(codes::EMPTY_PARAMETER));
        assert_eq!(parse_address("Address="), Err(codes::EMPTY_PARAMETER));
        for bad in [
            "Address=10.0.0.1",
            "Address=10.0.0.1:99999",
            "Address=10.0.0.1:0",
            "Address=$(reboot):80",
            "Address=a;b:80",
        ] {
            assert_eq!(parse_address(bad), Err(codes::BAD_DATA_FORMAT), "{bad}");
        }
    }

    #[test]
    fn a_listening_port_answers_0_and_a_closed_one_minus_730() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let args = format!("Address=127.0.0.1:{port}");
        assert_eq!(run(&args, Duration::from_secs(2)), codes::OK);
        drop(listener);
        assert_eq!(
            run(&args, Duration::from_secs(2)),
            codes::NO_SERVER_RESPONSE
        );
        assert_eq!(
            run("Address=nope", Duration::from_secs(2)),
            codes::BAD_DATA_FORMAT
        );
    }
}
