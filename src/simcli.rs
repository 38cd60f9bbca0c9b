//! `lintel sim`: drives a running `lintel run` whose board uses the sim backend, through
//! its control socket `<data_dir>/sim.sock`.
//!
//! ```text
//! lintel sim --config FILE swipe  --reader 1 --card 123456 [--site 18 on a site-code format]
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
use lexopt::ValueExt;
use lintel_hal::fault::FaultConfig;
use lintel_hal::sim::{self, SimRequest};

/// What `lintel sim --help` prints.
pub const USAGE: &str = "\
usage: lintel sim --config FILE VERB [ARGS]

Drives the simulated board of a running `lintel run` through its control
socket (<data_dir>/sim.sock).

verbs:
  swipe   --reader N --card NUMBER [--site CODE]
          present a card (all the card bits of the reader's format: 24 with the
          default wiegand26; --site only for site-code formats such as wiegand26a)
  keypad  --reader N --keys KEYS [--eight-bit]
          type keys (0-9, *, #), one Wiegand burst per key
  wiegand --reader N --bits 0101...      send a raw Wiegand frame, first bit first
  sensor  --door N open|closed           open or close a door contact
  button  --door N                       press and release an exit button
  auxin   --index N on|off               switch an aux input
  tamper  on|off                         the enclosure tamper switch
  power-fail on|off                      mains failure
  faults  [--drop N] [--flip N] [--noise N] [--seed N]
          inject faults into Wiegand playback (per-mille rates; all 0: off)
  state   print outputs and inputs as JSON
";

/// `lintel sim` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimArgs {
    /// The firmware config file (its `[device] data_dir` holds the sim socket).
    pub config: PathBuf,
    pub verb: SimVerb,
}

/// Open or closed, for door sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorState {
    Open,
    Closed,
}

/// On or off, for switch inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

/// One `lintel sim` verb and its arguments (see [`USAGE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimVerb {
    Swipe {
        reader: u8,
        card: u64,
        site: Option<u32>,
    },
    Keypad {
        reader: u8,
        keys: String,
        eight_bit: bool,
    },
    Wiegand {
        reader: u8,
        bits: String,
    },
    Sensor {
        door: u8,
        state: DoorState,
    },
    Button {
        door: u8,
    },
    Auxin {
        index: u8,
        state: Switch,
    },
    Tamper {
        state: Switch,
    },
    PowerFail {
        state: Switch,
    },
    Faults {
        drop: u16,
        flip: u16,
        noise: u16,
        seed: u64,
    },
    State,
}

/// The options and the one positional word a verb was given.
#[derive(Default)]
struct VerbArgs {
    options: Vec<(String, Option<String>)>,
    word: Option<String>,
}

impl VerbArgs {
    /// Reads the rest of the command line: `--name value`, `--flag` (for the
    /// names in `flags`) and at most one plain word.
    fn read(parser: &mut lexopt::Parser, flags: &[&str]) -> Result<VerbArgs, lexopt::Error> {
        use lexopt::Arg;
        let mut args = VerbArgs::default();
        while let Some(arg) = parser.next()? {
            match arg {
                Arg::Long(name) if flags.contains(&name) => {
                    args.options.push((name.to_owned(), None));
                }
                Arg::Long(name) => {
                    let name = name.to_owned();
                    let value = parser.value()?.string()?;
                    args.options.push((name, Some(value)));
                }
                Arg::Value(word) if args.word.is_none() => args.word = Some(word.string()?),
                other => return Err(other.unexpected()),
            }
        }
        Ok(args)
    }

    fn take(&mut self, name: &str) -> Option<Option<String>> {
        let at = self.options.iter().position(|(n, _)| n == name)?;
        Some(self.options.remove(at).1)
    }

    fn flag(&mut self, name: &str) -> bool {
        self.take(name).is_some()
    }

    fn optional<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, lexopt::Error> {
        match self.take(name).flatten() {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                lexopt::Error::from(format!("--{name}: {text:?} is not a valid value"))
            }),
        }
    }

    fn required<T: std::str::FromStr>(&mut self, name: &str) -> Result<T, lexopt::Error> {
        self.optional(name)?
            .ok_or_else(|| lexopt::Error::from(format!("--{name} is required")))
    }

    fn word<T>(&mut self, what: &str, choices: &[(&str, T)]) -> Result<T, lexopt::Error>
    where
        T: Copy,
    {
        let word = self.word.take().unwrap_or_default();
        choices
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                lexopt::Error::from(format!("{what} must be one of {}", names.join(", ")))
            })
    }

    /// Nothing may be left over: a misspelt option is an error, not ignored.
    fn done(self) -> Result<(), lexopt::Error> {
        if let Some((name, _)) = self.options.first() {
            return Err(format!("unexpected option --{name}").into());
        }
        if let Some(word) = self.word {
            return Err(format!("unexpected argument {word:?}").into());
        }
        Ok(())
    }
}

impl SimArgs {
    /// Parses what follows `lintel sim` (lexopt has read nothing of it yet);
    /// `None` when it asks for `--help` ([`USAGE`]).
    pub fn parse(parser: &mut lexopt::Parser) -> Result<Option<SimArgs>, lexopt::Error> {
        use lexopt::Arg;
        let mut config = None;
        let verb = loop {
            match parser.next()? {
                Some(Arg::Long("config")) | Some(Arg::Short('c')) => {
                    config = Some(PathBuf::from(parser.value()?));
                }
                Some(Arg::Long("help")) | Some(Arg::Short('h')) => return Ok(None),
                Some(Arg::Value(name)) => break name.string()?,
                Some(other) => return Err(other.unexpected()),
                None => return Err("a verb is required (see lintel sim --help)".into()),
            }
        };
        let verb = SimVerb::parse(&verb, parser)?;
        let config = config.ok_or_else(|| lexopt::Error::from("--config is required"))?;
        Ok(Some(SimArgs { config, verb }))
    }
}

impl SimVerb {
    /// Parses verb `name` and its arguments.
    pub fn parse(name: &str, parser: &mut lexopt::Parser) -> Result<SimVerb, lexopt::Error> {
        const SWITCH: &[(&str, Switch)] = &[("on", Switch::On), ("off", Switch::Off)];
        let flags: &[&str] = if name == "keypad" {
            &["eight-bit"]
        } else {
            &[]
        };
        let mut a = VerbArgs::read(parser, flags)?;
        let verb = match name {
            "swipe" => SimVerb::Swipe {
                reader: a.required("reader")?,
                card: a.required("card")?,
                site: a.optional("site")?,
            },
            "keypad" => SimVerb::Keypad {
                reader: a.required("reader")?,
                keys: a.required("keys")?,
                eight_bit: a.flag("eight-bit"),
            },
            "wiegand" => SimVerb::Wiegand {
                reader: a.required("reader")?,
                bits: a.required("bits")?,
            },
            "sensor" => SimVerb::Sensor {
                door: a.required("door")?,
                state: a.word(
                    "the state",
                    &[("open", DoorState::Open), ("closed", DoorState::Closed)],
                )?,
            },
            "button" => SimVerb::Button {
                door: a.required("door")?,
            },
            "auxin" => SimVerb::Auxin {
                index: a.required("index")?,
                state: a.word("the state", SWITCH)?,
            },
            "tamper" => SimVerb::Tamper {
                state: a.word("the state", SWITCH)?,
            },
            "power-fail" => SimVerb::PowerFail {
                state: a.word("the state", SWITCH)?,
            },
            "faults" => SimVerb::Faults {
                drop: a.optional("drop")?.unwrap_or(0),
                flip: a.optional("flip")?.unwrap_or(0),
                noise: a.optional("noise")?.unwrap_or(0),
                seed: a.optional("seed")?.unwrap_or(0),
            },
            "state" => SimVerb::State,
            other => return Err(format!("unknown verb {other:?} (see lintel sim --help)").into()),
        };
        a.done()?;
        Ok(verb)
    }

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
    use lintel_hal::board::BoardConfig;
    use lintel_hal::wiegand::{decode, Decoded, FormatTable};
    use lintel_hal::InputEvent;
    use std::time::Duration;

    fn try_parse(args: &[&str]) -> Result<SimArgs, lexopt::Error> {
        SimArgs::parse(&mut lexopt::Parser::from_args(args.iter().copied()))?
            .ok_or_else(|| "--help".into())
    }

    fn parse(args: &[&str]) -> SimArgs {
        let mut all = vec!["--config", "c.toml"];
        all.extend_from_slice(args);
        try_parse(&all).unwrap()
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
        assert!(try_parse(&["--config", "c", "sensor", "--door", "1", "ajar"]).is_err());
        assert!(try_parse(&["--config", "c", "swipe", "--reader", "1", "--crad", "1"]).is_err());
        assert!(try_parse(&["swipe", "--reader", "1", "--card", "1"]).is_err());
        assert_eq!(
            parse(&["keypad", "--reader", "1", "--keys", "12", "--eight-bit"])
                .verb
                .request(),
            SimRequest::Keypad {
                reader: 1,
                keys: "12".into(),
                eight_bit: true
            }
        );
        assert_eq!(
            parse(&["faults", "--noise", "100"]).verb.request(),
            SimRequest::Faults(FaultConfig {
                drop_per_mille: 0,
                flip_per_mille: 0,
                noise_per_mille: 100,
                seed: 0,
            })
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
            let mut all = vec!["--config", config.to_str().unwrap()];
            all.extend_from_slice(verb);
            try_parse(&all).unwrap()
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
            &args(&["swipe", "--reader", "3", "--card", "123456"]),
            &mut Vec::new(),
        )
        .unwrap();
        match rx.recv_timeout(Duration::from_secs(3)).unwrap() {
            InputEvent::Wiegand { reader, frame } => {
                assert_eq!(reader, 3);
                // The board's wiegand26 sends all 24 bits of the card number.
                assert!(matches!(
                    decode(&frame, &FormatTable::standard()),
                    Decoded::Card {
                        number: 123_456,
                        site_code: None,
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
