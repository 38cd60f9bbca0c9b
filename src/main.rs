//! The `lintel` command: run the firmware, or talk to a running one.

use anyhow::Context;
use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
lintel: door-controller firmware speaking the Security PUSH protocol 3.1.2

usage:
  lintel run --config FILE            run the firmware with a config file
  lintel check-config --config FILE   check a config file as `run` would (board
                                      file and its devices, data directory,
                                      upgrade key) and exit
  lintel sim --config FILE VERB ...   drive the simulated board of a running
                                      firmware (lintel sim --help)
  lintel --version | --help
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Run {
        config: PathBuf,
    },
    Sim(lintel::simcli::SimArgs),
    CheckConfig {
        config: PathBuf,
    },
    /// Print this text on stdout and exit successfully (--help, --version).
    Print(String),
}

/// Parses the command line. A few lines of lexopt instead of a derive-based
/// parser: that one cost about 150 KB of a binary that must stay under 4 MB.
fn parse(mut args: lexopt::Parser) -> Result<Command, lexopt::Error> {
    use lexopt::{Arg, ValueExt};
    let verb = match args.next()? {
        Some(Arg::Long("help")) | Some(Arg::Short('h')) => return Ok(Command::Print(USAGE.into())),
        Some(Arg::Long("version")) | Some(Arg::Short('V')) => {
            return Ok(Command::Print(format!(
                "lintel {}\n",
                env!("CARGO_PKG_VERSION")
            )))
        }
        Some(Arg::Value(verb)) => verb.string()?,
        Some(other) => return Err(other.unexpected()),
        None => return Err("a command is required (see lintel --help)".into()),
    };
    if verb == "sim" {
        return Ok(match lintel::simcli::SimArgs::parse(&mut args)? {
            Some(sim) => Command::Sim(sim),
            None => Command::Print(lintel::simcli::USAGE.into()),
        });
    }
    if verb != "run" && verb != "check-config" {
        return Err(format!("unknown command {verb:?} (see lintel --help)").into());
    }
    let mut config = None;
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Long("config") | Arg::Short('c') => config = Some(PathBuf::from(args.value()?)),
            Arg::Long("help") | Arg::Short('h') => return Ok(Command::Print(USAGE.into())),
            other => return Err(other.unexpected()),
        }
    }
    let config = config.ok_or_else(|| lexopt::Error::from("--config FILE is required"))?;
    Ok(if verb == "run" {
        Command::Run { config }
    } else {
        Command::CheckConfig { config }
    })
}

fn main() -> ExitCode {
    let command = match parse(lexopt::Parser::from_env()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("lintel: {e}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lintel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let logger = env_logger::Builder::from_env(env).build();
    let max = logger.filter();
    // Every line is redacted before it is written (secrets, src/logging.rs).
    let _ = lintel::logging::install(logger, max);
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Print(text) => {
            print!("{text}");
            Ok(())
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            init_logging(&config.log.level);
            let firmware = Firmware::start(&config, StartOptions::for_config(&config))
                .context("starting the firmware")?;
            firmware.supervise(
                lintel::watchdog::Notifier::from_env(),
                lintel::watchdog::watchdog_period(),
            );
            Ok(())
        }
        Command::Sim(args) => lintel::simcli::run(args),
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            // Exactly what `run` checks before it starts.
            let checked = lintel::app::check(&config)?;
            for warning in config.warnings() {
                eprintln!("lintel: warning: {warning}");
            }
            println!("{}: ok", config.device.serial);
            let upgrades = match (&config.upgrade.public_key, checked.upgrade.allow_unsigned) {
                (_, true) => "UNSIGNED packages allowed (allow_unsigned)".to_owned(),
                (Some(key), false) => format!("signed by {}", key.display()),
                (None, false) => "refused (no public_key)".to_owned(),
            };
            println!("upgrades: {upgrades}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, lexopt::Error> {
        parse(lexopt::Parser::from_args(words.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        assert_eq!(
            parse_words(&["run", "--config", "a.toml"]).unwrap(),
            Command::Run {
                config: "a.toml".into()
            }
        );
        assert_eq!(
            parse_words(&["check-config", "-c", "b.toml"]).unwrap(),
            Command::CheckConfig {
                config: "b.toml".into()
            }
        );
        assert!(matches!(
            parse_words(&["sim", "--config", "c.toml", "state"]).unwrap(),
            Command::Sim(_)
        ));
        assert!(matches!(
            parse_words(&["--version"]).unwrap(),
            Command::Print(t) if t.starts_with("lintel ")
        ));
        assert!(matches!(
            parse_words(&["--help"]).unwrap(),
            Command::Print(_)
        ));
        for bad in [
            &[][..],
            &["run"],
            &["run", "--config"],
            &["run", "--config", "a", "extra"],
            &["rnu", "--config", "a"],
            &["run", "--cfg", "a"],
        ] {
            assert!(parse_words(bad).is_err(), "{bad:?}");
        }
    }
}
