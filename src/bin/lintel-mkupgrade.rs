//! `lintel-mkupgrade`: creates signing keys and builds signed UPGRADE packages
//! (`emfw.cfg`) on the build machine. A separate binary so that the firmware
//! does not carry key generation, package building and RSA signing, which it
//! never needs (it only verifies).

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lintel-mkupgrade",
    about = "Build an emfw.cfg upgrade package for lintel"
)]
struct Cli {
    #[command(subcommand)]
    command: lintel::upgrade::cli::MkUpgradeCommand,
}

fn main() -> ExitCode {
    match lintel::upgrade::cli::mkupgrade_cli(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lintel-mkupgrade: {e:#}");
            ExitCode::FAILURE
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
