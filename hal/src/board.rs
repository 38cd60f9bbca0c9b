//! Board configuration: which GPIO line is which, active levels, readers, serial buses.
//!
//! A board file is TOML (see `board-configs/`). It may start with `inherit = "base.toml"`
//! (Hubris style): the base is loaded first (relative to the including file) and the board's
//! own tables and keys replace or extend it. Arrays of tables (`[[door]]`, `[[reader]]`, ...)
//! are replaced as a whole, never merged element by element, so a board always says exactly
//! which doors it has.
//!
//! Every key is checked: unknown keys are rejected by serde (`deny_unknown_fields`) and
//! [`BoardConfig::validate`] checks the cross references (door numbers, reader doors, lines
//! used twice, serial bus names). Either way the error is one line naming the file and key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wiegand::Format;

/// Errors while loading or checking a board file.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The file could not be read.
    #[error("board config {file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse or did not match the schema (unknown key, wrong type).
    #[error("board config {file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// The TOML parsed but a value is not acceptable.
    #[error("board config {file}: key `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// `inherit` chains loop or are too deep.
    #[error("board config {file}: `inherit` chain is deeper than {MAX_INHERIT_DEPTH} (a loop?)")]
    InheritTooDeep { file: PathBuf },
}

/// Short classification of [`BoardError`], in the manner of embedded-hal's `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardErrorKind {
    Io,
    Syntax,
    Invalid,
}

impl BoardError {
    pub fn kind(&self) -> BoardErrorKind {
        match self {
            BoardError::Read { .. } => BoardErrorKind::Io,
            BoardError::Parse { .. } => BoardErrorKind::Syntax,
            BoardError::Invalid { .. } | BoardError::InheritTooDeep { .. } => {
                BoardErrorKind::Invalid
            }
        }
    }

    fn with_file(self, file: &Path) -> BoardError {
        match self {
            BoardError::Parse { message, .. } => BoardError::Parse {
                file: file.to_path_buf(),
                message,
            },
            BoardError::Invalid { key, message, .. } => BoardError::Invalid {
                file: file.to_path_buf(),
                key,
                message,
            },
            other => other,
        }
    }
}

const MAX_INHERIT_DEPTH: usize = 8;
/// Largest board file read (the biggest checked-in one is a few KB).
pub const MAX_BOARD_FILE_BYTES: u64 = 256 * 1024;

/// Which implementation drives the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-memory lines driven by the `lintel sim` control socket.
    Sim,
    /// Linux GPIO character device (v1 uAPI via gpio-cdev) and serial ttys.
    Linux,
}

/// Pull resistor setting requested from the kernel (v1 uAPI bias flags, Linux 5.5+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bias {
    /// Leave the line as the device tree / firmware configured it.
    #[default]
    AsIs,
    PullUp,
    PullDown,
    Disabled,
}

/// One GPIO line: a chip (e.g. `gpiochip0`, or a path) and an offset on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    /// Chip name under /dev (`gpiochip0`) or an absolute path. Ignored by the sim backend.
    pub chip: String,
    /// Line offset on that chip.
    pub line: u32,
    /// True when the line is electrically low while "on" / "active". Default false.
    #[serde(default)]
    pub active_low: bool,
    /// Pull resistor. Default: as-is.
    #[serde(default)]
    pub bias: Bias,
    /// Inputs only: software debounce in milliseconds; default `[defaults] debounce_ms`.
    #[serde(default)]
    pub debounce_ms: Option<u32>,
}

impl LineSpec {
    /// `chip:line`, used in messages and to detect lines used twice.
    pub fn id(&self) -> String {
        format!("{}:{}", self.chip, self.line)
    }

    /// The character device of the chip: `/dev/<chip>`, or the chip as
    /// given when it is an absolute path.
    pub fn chip_path(&self) -> PathBuf {
        chip_path(&self.chip)
    }
}

/// See [`LineSpec::chip_path`].
pub fn chip_path(chip: &str) -> PathBuf {
    if chip.starts_with('/') {
        PathBuf::from(chip)
    } else {
        Path::new("/dev").join(chip)
    }
}

/// Whether a reader is on the entry or exit side of its door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderDirection {
    In,
    Out,
}

/// How a reader is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderKind {
    Wiegand,
    /// OSDP on an RS-485 bus (`"rs485"` is accepted too: OSDP is what such a reader speaks).
    #[serde(alias = "rs485")]
    Osdp,
}

/// Parity of a serial bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// How the RS-485 transceiver's driver-enable is switched around a transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionControl {
    /// The UART driver's RS-485 mode (TIOCSRS485); falls back to RTS where the driver lacks it.
    #[default]
    Kernel,
    /// RTS asserted while sending, toggled by lintel.
    Rts,
    /// A GPIO line (`direction_line`) asserted while sending.
    Gpio,
    /// Auto-direction transceiver: nothing to switch.
    None,
}

/// Defaults that apply to every line or reader unless overridden.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Software debounce for discrete inputs. Default 20 ms.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u32,
    /// Wiegand format used by readers that name none. Default "wiegand26" (ZK's name: 24
    /// card bits, no site code).
    #[serde(default = "default_wiegand_format")]
    pub wiegand_format: String,
    /// The longest silence inside a Wiegand frame: every frame has ended after it.
    /// Default 25 ms (readers send bits 0.2-20 ms apart, 1-2 ms typically).
    #[serde(default = "default_frame_gap_ms")]
    pub frame_gap_ms: u32,
    /// A Wiegand frame ends after this many of its own bit periods of silence (at least
    /// 2 ms, at most `frame_gap_ms`); 0 = always `frame_gap_ms`. Default 4.
    #[serde(default = "default_frame_end_bit_periods")]
    pub frame_end_bit_periods: u32,
    /// SCHED_FIFO priority (1-99) of the HAL's input threads (line readers, dispatcher),
    /// so a card is captured and handed on at once however busy the CPU; 0 = normal
    /// scheduling. Where the OS refuses (no root, CAP_SYS_NICE or rtprio limit) one log
    /// line says so and the threads run at normal priority. Default 20 (below the
    /// kernel's interrupt threads at 50).
    #[serde(default = "default_realtime_priority")]
    pub realtime_priority: u8,
}

fn default_debounce_ms() -> u32 {
    20
}
fn default_wiegand_format() -> String {
    "wiegand26".to_string()
}
fn default_frame_gap_ms() -> u32 {
    25
}
fn default_frame_end_bit_periods() -> u32 {
    4
}
fn default_realtime_priority() -> u8 {
    20
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            debounce_ms: default_debounce_ms(),
            wiegand_format: default_wiegand_format(),
            frame_gap_ms: default_frame_gap_ms(),
            frame_end_bit_periods: default_frame_end_bit_periods(),
            realtime_priority: default_realtime_priority(),
        }
    }
}

/// One door: its lock relay and its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    /// Door number, 1-based, as the server numbers doors.
    pub number: u8,
    /// Lock relay output ("on" = relay energised = door released).
    pub lock: LineSpec,
    /// Door contact ("on" = door open).
    #[serde(default)]
    pub sensor: Option<LineSpec>,
    /// Request-to-exit button ("on" = pressed).
    #[serde(default)]
    pub button: Option<LineSpec>,
}

/// One card reader.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    /// Reader number, 1-based.
    pub number: u8,
    /// Door this reader opens.
    pub door: u8,
    /// Entry or exit side.
    pub direction: ReaderDirection,
    /// Wiegand or RS-485.
    pub kind: ReaderKind,
    /// Wiegand data-0 line (Wiegand readers). Pulses are electrically low: set active_low.
    #[serde(default)]
    pub d0: Option<LineSpec>,
    /// Wiegand data-1 line.
    #[serde(default)]
    pub d1: Option<LineSpec>,
    /// Reader LED control output.
    #[serde(default)]
    pub led: Option<LineSpec>,
    /// Reader buzzer control output.
    #[serde(default)]
    pub buzzer: Option<LineSpec>,
    /// Wiegand format name (ZK's `wiegand26`, `wiegand26a`, ... see `wiegand::named`) or a
    /// server CardFormat string; default
    /// `[defaults] wiegand_format`.
    #[serde(default)]
    pub format: Option<String>,
    /// OSDP readers: the `[[serial]]` bus name and the reader's OSDP address on it (0-126).
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub address: Option<u8>,
    /// OSDP readers: the Secure Channel base key, 32 hex digits. With it the Secure
    /// Channel is required and plain-text card data from the reader is refused.
    #[serde(default)]
    pub scbk: Option<String>,
    /// OSDP readers: allow the default key SCBK-D once, to install `scbk` in a reader that
    /// does not know it yet (a new reader in install mode). Default false.
    #[serde(default)]
    pub install_mode: bool,
}

impl ReaderConfig {
    /// The reader's Secure Channel base key (None when it has none or it is not 32 hex
    /// digits, which [`BoardConfig::validate`] refuses).
    pub fn scbk_key(&self) -> Option<[u8; 16]> {
        parse_key(self.scbk.as_deref()?).ok()
    }
}

/// 32 hex digits to 16 bytes.
fn parse_key(text: &str) -> Result<[u8; 16], String> {
    let t = text.trim();
    if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "must be 32 hex digits (16 bytes), found {} characters",
            t.len()
        ));
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

/// An auxiliary input or output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuxConfig {
    /// 1-based index as the server numbers aux inputs/outputs.
    pub index: u8,
    pub line: LineSpec,
}

/// A serial (RS-485) bus.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// Name readers use to refer to this bus.
    pub name: String,
    /// tty device path (`/dev/ttyS1`). On a sim board `"sim"` keeps the bus in memory and
    /// a path opens that tty for real (tests put an OSDP peripheral on a pseudo-terminal).
    pub device: PathBuf,
    /// 9600 to 115200; default 9600 (OSDP readers ship at 9600).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Default none.
    #[serde(default)]
    pub parity: Parity,
    /// Default kernel (with RTS fallback).
    #[serde(default)]
    pub direction: DirectionControl,
    /// The driver-enable line when `direction = "gpio"` ("on" = transmitting).
    #[serde(default)]
    pub direction_line: Option<LineSpec>,
}

fn default_baud() -> u32 {
    9600
}

/// The whole board.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// Board name for logs.
    pub name: String,
    /// Which backend drives this board.
    pub backend: Backend,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default, rename = "door")]
    pub doors: Vec<DoorConfig>,
    #[serde(default, rename = "reader")]
    pub readers: Vec<ReaderConfig>,
    #[serde(default)]
    pub aux_in: Vec<AuxConfig>,
    #[serde(default)]
    pub aux_out: Vec<AuxConfig>,
    /// Enclosure tamper switch ("on" = tampered).
    #[serde(default)]
    pub tamper: Option<LineSpec>,
    /// Mains-fail signal from the PSU ("on" = on battery).
    #[serde(default)]
    pub power_fail: Option<LineSpec>,
    #[serde(default)]
    pub serial: Vec<SerialConfig>,
    /// What readers show and sound after a decision (`[feedback]`).
    #[serde(default)]
    pub feedback: FeedbackTiming,
}

/// The board's `[feedback]` table: how long each signal lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackTiming {
    /// Green LED after a grant, ms. Default 2000.
    #[serde(default = "default_grant_led_ms")]
    pub grant_led_ms: u32,
    /// The one beep of a grant, ms (0 = silent). Default 200.
    #[serde(default = "default_grant_beep_ms")]
    pub grant_beep_ms: u32,
    /// Red LED after a denial (OSDP readers; a Wiegand reader's LED line stays at its
    /// idle colour), ms. Default 1000.
    #[serde(default = "default_deny_led_ms")]
    pub deny_led_ms: u32,
    /// Beeps of a denial (0 = silent). Default 2.
    #[serde(default = "default_deny_beeps")]
    pub deny_beeps: u8,
    /// Each denial beep, ms. Default 150.
    #[serde(default = "default_deny_beep_ms")]
    pub deny_beep_ms: u32,
    /// Silence between denial beeps, ms. Default 100.
    #[serde(default = "default_deny_gap_ms")]
    pub deny_gap_ms: u32,
}

fn default_grant_led_ms() -> u32 {
    2000
}
fn default_grant_beep_ms() -> u32 {
    200
}
fn default_deny_led_ms() -> u32 {
    1000
}
fn default_deny_beeps() -> u8 {
    2
}
fn default_deny_beep_ms() -> u32 {
    150
}
fn default_deny_gap_ms() -> u32 {
    100
}

impl Default for FeedbackTiming {
    fn default() -> Self {
        FeedbackTiming {
            grant_led_ms: default_grant_led_ms(),
            grant_beep_ms: default_grant_beep_ms(),
            deny_led_ms: default_deny_led_ms(),
            deny_beeps: default_deny_beeps(),
            deny_beep_ms: default_deny_beep_ms(),
            deny_gap_ms: default_deny_gap_ms(),
        }
    }
}

/// The longest LED time (OSDP carries 100 ms units in 16 bits; a door stays green no
/// longer than a minute).
const MAX_LED_MS: u32 = 60_000;
/// The longest beep or gap (osdp_BUZ carries 100 ms units in one byte).
const MAX_BEEP_MS: u32 = 25_000;
const MAX_BEEPS: u8 = 10;

impl FeedbackTiming {
    /// `Err((key, message))` for a value out of its range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let range = |key: &'static str, v: u32, max: u32| {
            if v > max {
                Err((key, format!("must be 0..={max} ms, found {v}")))
            } else {
                Ok(())
            }
        };
        range("feedback.grant_led_ms", self.grant_led_ms, MAX_LED_MS)?;
        range("feedback.deny_led_ms", self.deny_led_ms, MAX_LED_MS)?;
        range("feedback.grant_beep_ms", self.grant_beep_ms, MAX_BEEP_MS)?;
        range("feedback.deny_beep_ms", self.deny_beep_ms, MAX_BEEP_MS)?;
        range("feedback.deny_gap_ms", self.deny_gap_ms, MAX_BEEP_MS)?;
        if self.deny_beeps > MAX_BEEPS {
            return Err((
                "feedback.deny_beeps",
                format!("must be 0..={MAX_BEEPS}, found {}", self.deny_beeps),
            ));
        }
        Ok(())
    }
}

/// The counts the registration request reports (spec 7.4: LockCount, ReaderCount, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub lock_count: usize,
    pub reader_count: usize,
    pub aux_in_count: usize,
    pub aux_out_count: usize,
}

impl Capabilities {
    /// `(key, value)` pairs in the order and spelling of the registration line.
    pub fn registration_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LockCount", self.lock_count.to_string()),
            ("ReaderCount", self.reader_count.to_string()),
            ("AuxInCount", self.aux_in_count.to_string()),
            ("AuxOutCount", self.aux_out_count.to_string()),
        ]
    }
}

impl BoardConfig {
    /// Reads, resolves `inherit`, parses and validates a board file.
    pub fn load(path: &Path) -> Result<BoardConfig, BoardError> {
        let value = load_value(path, 0)?;
        let board: BoardConfig =
            value
                .try_into()
                .map_err(|e: toml::de::Error| BoardError::Parse {
                    file: path.to_path_buf(),
                    message: one_line(&e.to_string()),
                })?;
        board.validate().map_err(|e| e.with_file(path))?;
        Ok(board)
    }

    /// Parses and validates board TOML held in memory (`inherit` is not allowed here).
    pub fn from_toml_str(text: &str) -> Result<BoardConfig, BoardError> {
        let file = PathBuf::from("<string>");
        let board: BoardConfig = toml::from_str(text).map_err(|e| BoardError::Parse {
            file: file.clone(),
            message: one_line(&e.to_string()),
        })?;
        board.validate().map_err(|e| e.with_file(&file))?;
        Ok(board)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Every GPIO line the board names.
    pub fn lines(&self) -> Vec<&LineSpec> {
        let mut lines = Vec::new();
        for d in &self.doors {
            lines.push(&d.lock);
            lines.extend(d.sensor.iter().chain(d.button.iter()));
        }
        for r in &self.readers {
            lines.extend([&r.d0, &r.d1, &r.led, &r.buzzer].into_iter().flatten());
        }
        lines.extend(self.aux_in.iter().chain(&self.aux_out).map(|a| &a.line));
        lines.extend(self.tamper.iter().chain(self.power_fail.iter()));
        lines.extend(self.serial.iter().filter_map(|s| s.direction_line.as_ref()));
        lines
    }

    /// The device files the Linux backend opens (GPIO chips, then serial
    /// ttys), each once, with the key that names it; none for the sim.
    pub fn device_paths(&self) -> Vec<(String, PathBuf)> {
        if self.backend != Backend::Linux {
            return Vec::new();
        }
        // A handful of devices: a list is smaller than a set here.
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        let named = self
            .lines()
            .into_iter()
            .map(|line| (format!("chip {}", line.chip), line.chip_path()))
            .chain(
                self.serial
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("serial[{i}].device"), s.device.clone())),
            );
        for (key, path) in named {
            if !out.iter().any(|(_, p)| *p == path) {
                out.push((key, path));
            }
        }
        out
    }
    pub fn lock_count(&self) -> usize {
        self.doors.len()
    }
    pub fn reader_count(&self) -> usize {
        self.readers.len()
    }
    pub fn aux_in_count(&self) -> usize {
        self.aux_in.len()
    }
    pub fn aux_out_count(&self) -> usize {
        self.aux_out.len()
    }

    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            lock_count: self.lock_count(),
            reader_count: self.reader_count(),
            aux_in_count: self.aux_in_count(),
            aux_out_count: self.aux_out_count(),
        }
    }

    /// Door by 1-based number.
    pub fn door(&self, number: u8) -> Option<&DoorConfig> {
        self.doors.iter().find(|d| d.number == number)
    }

    /// Whether any reader is an OSDP (RS-485) reader.
    pub fn has_osdp_readers(&self) -> bool {
        self.readers.iter().any(|r| r.kind == ReaderKind::Osdp)
    }

    /// Reader by 1-based number.
    pub fn reader(&self, number: u8) -> Option<&ReaderConfig> {
        self.readers.iter().find(|r| r.number == number)
    }

    /// Readers of one door.
    pub fn readers_of_door(&self, door: u8) -> impl Iterator<Item = &ReaderConfig> {
        self.readers.iter().filter(move |r| r.door == door)
    }

    /// The Wiegand format a reader is configured with (its own or the board default).
    pub fn reader_format(&self, reader: &ReaderConfig) -> Result<Format, BoardError> {
        let text = reader
            .format
            .as_deref()
            .unwrap_or(&self.defaults.wiegand_format);
        Format::by_name_or_card_format(text).map_err(|e| BoardError::Invalid {
            file: PathBuf::new(),
            key: format!("reader[{}].format", reader.number),
            message: e.to_string(),
        })
    }

    /// Checks every cross reference; the error names the first bad key.
    pub fn validate(&self) -> Result<(), BoardError> {
        let bad = |key: String, message: String| BoardError::Invalid {
            file: PathBuf::new(),
            key,
            message,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name".into(), "must not be empty".into()));
        }
        if self.defaults.frame_gap_ms == 0 || self.defaults.frame_gap_ms > 1000 {
            return Err(bad(
                "defaults.frame_gap_ms".into(),
                "must be 1..=1000".into(),
            ));
        }
        if self.defaults.frame_end_bit_periods > 100 {
            return Err(bad(
                "defaults.frame_end_bit_periods".into(),
                "must be 0..=100".into(),
            ));
        }
        if self.defaults.realtime_priority > 99 {
            return Err(bad(
                "defaults.realtime_priority".into(),
                "must be 0 (normal scheduling) or a SCHED_FIFO priority 1..=99".into(),
            ));
        }
        Format::by_name_or_card_format(&self.defaults.wiegand_format)
            .map_err(|e| bad("defaults.wiegand_format".into(), e.to_string()))?;
        self.feedback
            .validate()
            .map_err(|(key, message)| bad(key.into(), message))?;

        // Lines used twice would fight each other (or the kernel refuses the second request).
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        let mut claim = |key: String, line: &LineSpec| -> Result<(), BoardError> {
            if let Some(previous) = used.insert(line.id(), key.clone()) {
                return Err(bad(
                    key,
                    format!("line {} is already used by `{previous}`", line.id()),
                ));
            }
            Ok(())
        };

        for (i, door) in self.doors.iter().enumerate() {
            let expected = i + 1;
            if usize::from(door.number) != expected {
                return Err(bad(
                    format!("door[{i}].number"),
                    format!(
                        "doors must be numbered 1, 2, ... in order; expected {expected}, found {}",
                        door.number
                    ),
                ));
            }
            claim(format!("door[{}].lock", door.number), &door.lock)?;
            if let Some(l) = &door.sensor {
                claim(format!("door[{}].sensor", door.number), l)?;
            }
            if let Some(l) = &door.button {
                claim(format!("door[{}].button", door.number), l)?;
            }
        }

        let bus_names: BTreeSet<&str> = self.serial.iter().map(|s| s.name.as_str()).collect();
        let mut sides: BTreeSet<(u8, &'static str)> = BTreeSet::new();
        for (i, r) in self.readers.iter().enumerate() {
            let expected = i + 1;
            let key = |field: &str| format!("reader[{}].{field}", r.number);
            if usize::from(r.number) != expected {
                return Err(bad(
                    format!("reader[{i}].number"),
                    format!(
                        "readers must be numbered 1, 2, ... in order; expected {expected}, found {}",
                        r.number
                    ),
                ));
            }
            if self.door(r.door).is_none() {
                return Err(bad(key("door"), format!("there is no door {}", r.door)));
            }
            let side = match r.direction {
                ReaderDirection::In => "in",
                ReaderDirection::Out => "out",
            };
            if !sides.insert((r.door, side)) {
                return Err(bad(
                    key("direction"),
                    format!("door {} already has an `{side}` reader", r.door),
                ));
            }
            match r.kind {
                ReaderKind::Wiegand => {
                    let d0 =
                        r.d0.as_ref()
                            .ok_or_else(|| bad(key("d0"), "a Wiegand reader needs d0".into()))?;
                    let d1 =
                        r.d1.as_ref()
                            .ok_or_else(|| bad(key("d1"), "a Wiegand reader needs d1".into()))?;
                    claim(key("d0"), d0)?;
                    claim(key("d1"), d1)?;
                    if r.bus.is_some() || r.address.is_some() {
                        return Err(bad(
                            key("bus"),
                            "bus/address are for OSDP readers only".into(),
                        ));
                    }
                    if r.scbk.is_some() || r.install_mode {
                        return Err(bad(
                            key("scbk"),
                            "scbk/install_mode are for OSDP readers only".into(),
                        ));
                    }
                }
                ReaderKind::Osdp => {
                    let bus = r
                        .bus
                        .as_deref()
                        .ok_or_else(|| bad(key("bus"), "an OSDP reader needs a bus".into()))?;
                    if !bus_names.contains(bus) {
                        return Err(bad(key("bus"), format!("there is no [[serial]] `{bus}`")));
                    }
                    let address = r.address.ok_or_else(|| {
                        bad(key("address"), "an OSDP reader needs an address".into())
                    })?;
                    if address > 126 {
                        return Err(bad(
                            key("address"),
                            format!("must be 0-126 (127 is OSDP's broadcast), found {address}"),
                        ));
                    }
                    if let Some(other) = self.readers[..i]
                        .iter()
                        .find(|o| o.bus.as_deref() == Some(bus) && o.address == Some(address))
                    {
                        return Err(bad(
                            key("address"),
                            format!(
                                "reader {} already has address {address} on `{bus}`",
                                other.number
                            ),
                        ));
                    }
                    if r.d0.is_some() || r.d1.is_some() {
                        return Err(bad(key("d0"), "d0/d1 are for Wiegand readers only".into()));
                    }
                    if let Some(k) = &r.scbk {
                        parse_key(k).map_err(|m| bad(key("scbk"), m))?;
                    } else if r.install_mode {
                        return Err(bad(
                            key("install_mode"),
                            "needs scbk: install mode installs the board's key in the reader"
                                .into(),
                        ));
                    }
                }
            }
            if let Some(f) = &r.format {
                Format::by_name_or_card_format(f).map_err(|e| bad(key("format"), e.to_string()))?;
            }
            if let Some(l) = &r.led {
                claim(key("led"), l)?;
            }
            if let Some(l) = &r.buzzer {
                claim(key("buzzer"), l)?;
            }
        }

        for (list, name) in [(&self.aux_in, "aux_in"), (&self.aux_out, "aux_out")] {
            for (i, aux) in list.iter().enumerate() {
                let expected = i + 1;
                if usize::from(aux.index) != expected {
                    return Err(bad(
                        format!("{name}[{i}].index"),
                        format!(
                            "must be numbered 1, 2, ... in order; expected {expected}, found {}",
                            aux.index
                        ),
                    ));
                }
                claim(format!("{name}[{}].line", aux.index), &aux.line)?;
            }
        }
        if let Some(l) = &self.tamper {
            claim("tamper".into(), l)?;
        }
        if let Some(l) = &self.power_fail {
            claim("power_fail".into(), l)?;
        }

        let mut names = BTreeSet::new();
        for (i, s) in self.serial.iter().enumerate() {
            let key = |field: &str| format!("serial[{i}].{field}");
            if s.name.trim().is_empty() {
                return Err(bad(key("name"), "must not be empty".into()));
            }
            if !names.insert(s.name.as_str()) {
                return Err(bad(key("name"), format!("`{}` is used twice", s.name)));
            }
            if !(9600..=115_200).contains(&s.baud) {
                return Err(bad(
                    key("baud"),
                    format!("must be 9600 to 115200, found {}", s.baud),
                ));
            }
            let carries_osdp = self
                .readers
                .iter()
                .any(|r| r.kind == ReaderKind::Osdp && r.bus.as_deref() == Some(s.name.as_str()));
            if carries_osdp && s.parity != Parity::None {
                return Err(bad(
                    key("parity"),
                    "OSDP runs 8 data bits, no parity, 1 stop bit: use parity = \"none\"".into(),
                ));
            }
            if s.device.as_os_str().is_empty() {
                return Err(bad(key("device"), "must not be empty".into()));
            }
            match (s.direction, &s.direction_line) {
                (DirectionControl::Gpio, None) => {
                    return Err(bad(
                        key("direction_line"),
                        "direction = \"gpio\" needs direction_line".into(),
                    ))
                }
                (DirectionControl::Gpio, Some(l)) => claim(key("direction_line"), l)?,
                (_, Some(_)) => {
                    return Err(bad(
                        key("direction_line"),
                        "only used with direction = \"gpio\"".into(),
                    ))
                }
                (_, None) => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sim => "sim",
            Backend::Linux => "linux",
        })
    }
}

/// Reads a TOML file into a value, resolving `inherit` recursively.
fn load_value(path: &Path, depth: usize) -> Result<toml::Table, BoardError> {
    if depth > MAX_INHERIT_DEPTH {
        return Err(BoardError::InheritTooDeep {
            file: path.to_path_buf(),
        });
    }
    let text = crate::textfile::read_capped(path, MAX_BOARD_FILE_BYTES).map_err(|source| {
        BoardError::Read {
            file: path.to_path_buf(),
            source,
        }
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| BoardError::Parse {
        file: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    match table.remove("inherit") {
        None => Ok(table),
        Some(toml::Value::String(base)) => {
            let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
            let mut merged = load_value(&base_path, depth + 1)?;
            merge(&mut merged, table);
            Ok(merged)
        }
        Some(_) => Err(BoardError::Invalid {
            file: path.to_path_buf(),
            key: "inherit".into(),
            message: "must be a file name string".into(),
        }),
    }
}

/// Overlays `top` on `base`: tables merge key by key, everything else (arrays included) replaces.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// toml's messages span several lines (with a source excerpt); the first line plus the
/// excerpt's key is what a person needs, on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            // Drop the source excerpt: "21 | d1 = { ... }", "|", "^^^^" markers.
            let excerpt = l
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start()
                .starts_with('|');
            !l.is_empty() && !excerpt && !l.starts_with("-->") && !l.starts_with('^')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TWO_DOOR: &str = r#"
name = "test-2door"
backend = "sim"

[[door]]
number = 1
lock = { chip = "sim", line = 0 }
sensor = { chip = "sim", line = 1, active_low = true }
button = { chip = "sim", line = 2, active_low = true, bias = "pull-up" }

[[door]]
number = 2
lock = { chip = "sim", line = 10, active_low = true }

[[reader]]
number = 1
door = 1
direction = "in"
kind = "wiegand"
d0 = { chip = "sim", line = 3, active_low = true }
d1 = { chip = "sim", line = 4, active_low = true }
led = { chip = "sim", line = 5 }

[[reader]]
number = 2
door = 1
direction = "out"
kind = "rs485"
bus = "bus1"
address = 2

[[aux_in]]
index = 1
line = { chip = "sim", line = 20 }

[[serial]]
name = "bus1"
device = "/dev/ttyS1"
baud = 19200
parity = "none"
direction = "rts"
"#;

    #[test]
    fn parses_counts_and_lookups() {
        let b = BoardConfig::from_toml_str(TWO_DOOR).unwrap();
        assert_eq!(b.backend(), Backend::Sim);
        assert_eq!(
            (
                b.lock_count(),
                b.reader_count(),
                b.aux_in_count(),
                b.aux_out_count()
            ),
            (2, 2, 1, 0)
        );
        assert_eq!(b.readers_of_door(1).count(), 2);
        assert_eq!(b.readers_of_door(2).count(), 0);
        assert_eq!(b.reader(2).unwrap().kind, ReaderKind::Osdp);
        assert!(b.has_osdp_readers());
        assert_eq!(b.serial[0].parity, Parity::None);
        assert_eq!(b.defaults.frame_gap_ms, 25);
        assert_eq!(
            (
                b.defaults.frame_end_bit_periods,
                b.defaults.realtime_priority
            ),
            (4, 20)
        );
        assert_eq!(
            b.door(1).unwrap().button.as_ref().unwrap().bias,
            Bias::PullUp
        );
        let fields = b.capabilities().registration_fields();
        assert_eq!(fields[0], ("LockCount", "2".to_string()));
        assert_eq!(fields[3], ("AuxOutCount", "0".to_string()));
        assert_eq!(b.reader_format(b.reader(1).unwrap()).unwrap().len(), 26);
    }

    fn err_of(text: &str) -> String {
        BoardConfig::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_is_named_on_one_line() {
        let text = TWO_DOOR.replace("line = 4, active_low", "line = 4, activ_low");
        let msg = err_of(&text);
        assert!(msg.contains("unknown field `activ_low`"), "{msg}");
        assert!(msg.contains("line 21"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with("board config <string>:"), "{msg}");
    }

    #[test]
    fn cross_reference_errors_name_the_key() {
        let msg = err_of(&TWO_DOOR.replace(
            "door = 1\ndirection = \"out\"",
            "door = 3\ndirection = \"out\"",
        ));
        assert!(
            msg.contains("`reader[2].door`") && msg.contains("no door 3"),
            "{msg}"
        );

        let msg = err_of(&TWO_DOOR.replace("line = 20", "line = 0"));
        assert!(
            msg.contains("`aux_in[1].line`") && msg.contains("door[1].lock"),
            "{msg}"
        );

        let msg = err_of(&TWO_DOOR.replace("bus = \"bus1\"", "bus = \"bus9\""));
        assert!(msg.contains("`reader[2].bus`"), "{msg}");

        let msg = err_of(&TWO_DOOR.replace("number = 2\nlock", "number = 3\nlock"));
        assert!(msg.contains("`door[1].number`"), "{msg}");

        let msg = err_of(&TWO_DOOR.replace("direction = \"out\"", "direction = \"in\""));
        assert!(msg.contains("`reader[2].direction`"), "{msg}");

        let msg = err_of(&TWO_DOOR.replace("direction = \"rts\"", "direction = \"gpio\""));
        assert!(msg.contains("`serial[0].direction_line`"), "{msg}");

        let msg = err_of(&TWO_DOOR.replace(
            "led = { chip = \"sim\", line = 5 }",
            "led = { chip = \"sim\", line = 5 }\nformat = \"pccp:eee\"",
        ));
        assert!(msg.contains("`reader[1].format`"), "{msg}");
    }

    #[test]
    fn osdp_reader_keys_are_checked_and_named() {
        let osdp = |extra: &str| {
            TWO_DOOR.replace(
                "bus = \"bus1\"\naddress = 2\n",
                &format!("bus = \"bus1\"\naddress = 2\n{extra}\n"),
            )
        };
        let key = "00112233445566778899aabbccddeeff";
        let b = BoardConfig::from_toml_str(&osdp(&format!("scbk = \"{key}\""))).unwrap();
        let r = b.reader(2).unwrap();
        assert_eq!(r.scbk_key().unwrap()[15], 0xFF);
        assert!(!r.install_mode);
        // kind = "osdp" is the name; "rs485" stays accepted.
        let b =
            BoardConfig::from_toml_str(&TWO_DOOR.replace("kind = \"rs485\"", "kind = \"osdp\""))
                .unwrap();
        assert_eq!(b.reader(2).unwrap().kind, ReaderKind::Osdp);

        let cases = [
            (osdp("scbk = \"0011\""), "`reader[2].scbk`", "32 hex digits"),
            (
                osdp(&format!("scbk = \"{}zz\"", &key[..30])),
                "`reader[2].scbk`",
                "32 hex",
            ),
            (
                osdp("install_mode = true"),
                "`reader[2].install_mode`",
                "needs scbk",
            ),
            (
                TWO_DOOR.replace("address = 2", "address = 127"),
                "`reader[2].address`",
                "0-126",
            ),
            (
                TWO_DOOR.replace("address = 2\n", ""),
                "`reader[2].address`",
                "needs an address",
            ),
            (
                TWO_DOOR.replace("parity = \"none\"", "parity = \"even\""),
                "`serial[0].parity`",
                "no parity",
            ),
            (
                TWO_DOOR.replace("baud = 19200", "baud = 4800"),
                "`serial[0].baud`",
                "9600 to 115200",
            ),
            (
                TWO_DOOR.replace("baud = 19200", "baud = 230400"),
                "`serial[0].baud`",
                "9600 to 115200",
            ),
            (
                TWO_DOOR.replace(
                    "led = { chip = \"sim\", line = 5 }",
                    &format!("led = {{ chip = \"sim\", line = 5 }}\nscbk = \"{key}\""),
                ),
                "`reader[1].scbk`",
                "OSDP readers only",
            ),
        ];
        for (text, key_name, words) in cases {
            let msg = err_of(&text);
            assert!(msg.contains(key_name) && msg.contains(words), "{msg}");
        }

        // Two readers at one address on one bus.
        let twice = format!(
            "{TWO_DOOR}\n[[door]]\nnumber = 3\nlock = {{ chip = \"sim\", line = 30 }}\n[[reader]]\nnumber = 3\ndoor = 3\ndirection = \"in\"\nkind = \"osdp\"\nbus = \"bus1\"\naddress = 2\n"
        );
        let msg = err_of(&twice);
        assert!(
            msg.contains("`reader[3].address`") && msg.contains("reader 2 already"),
            "{msg}"
        );
    }

    #[test]
    fn the_osdp_example_board_keys_two_readers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs/osdp-2door.toml");
        let b = BoardConfig::load(&path).unwrap();
        assert!(b.has_osdp_readers());
        let keyed: Vec<u8> = b
            .readers
            .iter()
            .filter(|r| r.scbk_key().is_some())
            .map(|r| r.number)
            .collect();
        assert_eq!(keyed, vec![1, 2]);
        assert_eq!(b.reader(3).unwrap().address, Some(3));
        assert_eq!(b.reader_format(b.reader(3).unwrap()).unwrap().len(), 34);
    }

    #[test]
    fn inherit_overlays_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), TWO_DOOR).unwrap();
        std::fs::write(
            dir.path().join("board.toml"),
            "inherit = \"base.toml\"\nname = \"child\"\n[defaults]\nframe_gap_ms = 40\n",
        )
        .unwrap();
        let b = BoardConfig::load(&dir.path().join("board.toml")).unwrap();
        assert_eq!(b.name, "child");
        assert_eq!(b.defaults.frame_gap_ms, 40);
        assert_eq!(b.defaults.debounce_ms, 20);
        assert_eq!(b.lock_count(), 2);

        std::fs::write(dir.path().join("loop.toml"), "inherit = \"loop.toml\"\n").unwrap();
        let e = BoardConfig::load(&dir.path().join("loop.toml")).unwrap_err();
        assert_eq!(e.kind(), BoardErrorKind::Invalid);
    }

    #[test]
    fn missing_file_names_it() {
        let e = BoardConfig::load(Path::new("/nonexistent/board.toml")).unwrap_err();
        assert_eq!(e.kind(), BoardErrorKind::Io);
        assert!(e.to_string().contains("/nonexistent/board.toml"));
    }
}
