//! The `lintel` command: run the firmware, or talk to a running one.

use anyhow::Context;
use clap::{Parser, Subcommand};
use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lintel",
    version,
    about = "Door-controller firmware speaking the Security PUSH protocol 3.1.2"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the firmware with a config file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Drive the simulated board of a running firmware.
    Sim(lintel::simcli::SimArgs),
    /// Check a config file (and its board file) and exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lintel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env).try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
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
            lintel_hal::board::BoardConfig::load(&config.device.board)?;
            println!("{}: ok", config.device.serial);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
