//! `lintel sim`: drives a running `lintel run` whose board uses the sim backend, through
//! its control socket `<data_dir>/sim.sock`.
//!
//! ```text
//! lintel sim --config FILE swipe  --reader 1 --card 4660 [--site 18]
//! lintel sim --config FILE keypad --reader 1 --keys 1234#
//! lintel sim --config FILE wiegand --reader 1 --bits 0101...
//! lintel sim --config FILE sensor --door 1 open|closed
//! lintel sim --config FILE button --door 1
//! lintel sim --config FILE auxin  --index 1 on|off
//! lintel sim --config FILE tamper on|off
//! lintel sim --config FILE power-fail on|off
//! lintel sim --config FILE faults --noise 100 --drop 0 --flip 0
//! lintel sim --config FILE state
//! ```
//!
//! A swipe is encoded by the running sim in the reader's board format (parity included)
//! and played as timed D0/D1 edges through the same capture code the Linux backend uses.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lintel_hal::fault::FaultConfig;
use lintel_hal::sim::{self, SimRequest};

/// `lintel sim` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// The firmware config file (its `[device] data_dir` holds the sim socket).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub verb: SimVerb,
}

/// Open or closed, for door sensors.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorState {
    Open,
    Closed,
}

/// On or off, for switch inputs.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimVerb {
    /// Present a card to reader N (Wiegand, in the reader's board format).
    Swipe {
        #[arg(long)]
        reader: u8,
        /// Card number (decimal).
        #[arg(long)]
        card: u64,
        /// Site/facility code for formats that carry one (default 0).
        #[arg(long)]
        site: Option<u32>,
    },
    /// Type keys on reader N's keypad (0-9, *, #), one Wiegand burst per key.
    Keypad {
        #[arg(long)]
        reader: u8,
        #[arg(long)]
        keys: String,
        /// Send 8-bit key codes (with the complement nibble) instead of 4-bit ones.
        #[arg(long)]
        eight_bit: bool,
    },
    /// Send a raw Wiegand frame to reader N.
    Wiegand {
        #[arg(long)]
        reader: u8,
        /// The bits, first sent first, as 0 and 1.
        #[arg(long)]
        bits: String,
    },
    /// Open or close door N's contact.
    Sensor {
        #[arg(long)]
        door: u8,
        state: DoorState,
    },
    /// Press and release door N's exit button.
    Button {
        #[arg(long)]
        door: u8,
    },
    /// Switch aux input N.
    Auxin {
        #[arg(long)]
        index: u8,
        state: Switch,
    },
    /// Open (on) or close (off) the enclosure tamper switch.
    Tamper { state: Switch },
    /// Mains failure on or off.
    PowerFail { state: Switch },
    /// Inject faults into Wiegand playback (per-mille rates; all 0 turns faults off).
    Faults {
        #[arg(long, default_value_t = 0)]
        drop: u16,
        #[arg(long, default_value_t = 0)]
        flip: u16,
        #[arg(long, default_value_t = 0)]
        noise: u16,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print outputs and inputs as JSON:
    /// {"locks":[..],"aux_out":[..],"leds":[..],"buzzers":[..],"sensors":[..],...}
    State,
}

impl SimVerb {
    /// The control-socket request for this verb.
    pub fn request(&self) -> SimRequest {
        match self.clone() {
            SimVerb::Swipe { reader, card, site } => SimRequest::Swipe { reader, card, site },
            SimVerb::Keypad {
                reader,
                keys,
                eight_bit,
            } => SimRequest::Keypad {
                reader,
                keys,
                eight_bit,
            },
            SimVerb::Wiegand { reader, bits } => SimRequest::Wiegand { reader, bits },
            SimVerb::Sensor { door, state } => SimRequest::Sensor {
                door,
                open: state == DoorState::Open,
            },
            SimVerb::Button { door } => SimRequest::Button { door },
            SimVerb::Auxin { index, state } => SimRequest::AuxIn {
                index,
                on: state.on(),
            },
            SimVerb::Tamper { state } => SimRequest::Tamper { on: state.on() },
            SimVerb::PowerFail { state } => SimRequest::PowerFail { on: state.on() },
            SimVerb::Faults {
                drop,
                flip,
                noise,
                seed,
            } => SimRequest::Faults(FaultConfig {
                drop_per_mille: drop,
                flip_per_mille: flip,
                noise_per_mille: noise,
                seed,
            }),
            SimVerb::State => SimRequest::State,
        }
    }
}

/// Runs `lintel sim`; `state` prints its JSON on stdout.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(&args, &mut out)
}

/// [`run`] writing to `out` (tests capture it).
pub fn run_to(args: &SimArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let data_dir = data_dir(&args.config)?;
    run_in(&data_dir, &args.verb, out)
}

/// Sends one verb to the sim socket in `data_dir`.
pub fn run_in(data_dir: &Path, verb: &SimVerb, out: &mut dyn Write) -> anyhow::Result<()> {
    let response = sim::request(data_dir, &verb.request())?;
    if let Some(state) = response.state {
        let json = serde_json::to_string(&state).context("encoding the sim state")?;
        writeln!(out, "{json}").context("writing the sim state")?;
    }
    Ok(())
}

/// The data directory named by the firmware config (relative paths resolved against the
/// config file's directory by `Config::load`).
fn data_dir(config: &Path) -> anyhow::Result<PathBuf> {
    let config = crate::config::Config::load(config)?;
    Ok(config.device.data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use lintel_hal::board::BoardConfig;
    use lintel_hal::wiegand::{decode, Decoded, FormatTable};
    use lintel_hal::InputEvent;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> SimArgs {
        let mut all = vec!["lintel-sim", "--config", "c.toml"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().sim
    }

    #[test]
    fn verbs_parse_into_requests() {
        assert_eq!(
            parse(&["swipe", "--reader", "2", "--card", "123456"])
                .verb
                .request(),
            SimRequest::Swipe {
                reader: 2,
                card: 123456,
                site: None
            }
        );
        assert_eq!(
            parse(&["sensor", "--door", "3", "open"]).verb.request(),
            SimRequest::Sensor {
                door: 3,
                open: true
            }
        );
        assert_eq!(
            parse(&["auxin", "--index", "1", "off"]).verb.request(),
            SimRequest::AuxIn {
                index: 1,
                on: false
            }
        );
        assert_eq!(
            parse(&["tamper", "on"]).verb.request(),
            SimRequest::Tamper { on: true }
        );
        assert_eq!(
            parse(&["keypad", "--reader", "1", "--keys", "1234#"])
                .verb
                .request(),
            SimRequest::Keypad {
                reader: 1,
                keys: "1234#".into(),
                eight_bit: false
            }
        );
        assert_eq!(parse(&["state"]).verb.request(), SimRequest::State);
        assert!(
            Cli::try_parse_from(["x", "--config", "c", "sensor", "--door", "1", "ajar"]).is_err()
        );
    }

    #[test]
    fn drives_a_running_sim_and_reads_state() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("lintel.toml");
        std::fs::write(
            &config,
            "[device]\nserial = \"LNT0000001\"\ndata_dir = \"data\"\n[server]\nurl = \"http://127.0.0.1:8088\"\n",
        )
        .unwrap();
        let args = |verb: &[&str]| {
            let mut all = vec!["lintel-sim", "--config", config.to_str().unwrap()];
            all.extend_from_slice(verb);
            Cli::try_parse_from(all).unwrap().sim
        };

        // Not running yet: a clear error.
        let err = run_to(&args(&["state"]), &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is `lintel run` running with a sim board?"),
            "{err}"
        );

        let board_path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs/sim-4door.toml");
        let board = BoardConfig::load(&board_path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut hal = lintel_hal::open(&board, &data, tx).unwrap();
        while rx.recv_timeout(Duration::from_millis(100)).is_ok() {}

        run_to(
            &args(&["swipe", "--reader", "3", "--card", "4242", "--site", "7"]),
            &mut Vec::new(),
        )
        .unwrap();
        match rx.recv_timeout(Duration::from_secs(3)).unwrap() {
            InputEvent::Wiegand { reader, frame } => {
                assert_eq!(reader, 3);
                assert!(matches!(
                    decode(&frame, &FormatTable::standard()),
                    Decoded::Card {
                        number: 4242,
                        site_code: Some(7),
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }

        hal.locks[1].set(true).unwrap();
        run_to(&args(&["sensor", "--door", "4", "open"]), &mut Vec::new()).unwrap();
        let mut out = Vec::new();
        run_to(&args(&["state"]), &mut out).unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            state["locks"],
            serde_json::json!([false, true, false, false])
        );
        assert_eq!(
            state["sensors"],
            serde_json::json!([false, false, false, true])
        );
        assert_eq!(state["aux_out"].as_array().unwrap().len(), 4);
        assert_eq!(state["leds"].as_array().unwrap().len(), 4);
        assert_eq!(state["buzzers"].as_array().unwrap().len(), 4);

        let err = run_to(&args(&["button", "--door", "5"]), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("no door 5"), "{err}");
    }
}
