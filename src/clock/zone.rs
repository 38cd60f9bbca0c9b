//! The device's local zone: which offset from UTC every time rule, holiday,
//! validity date, DST decision and record time is read in.
//!
//! Precedence (ARCHITECTURE.md "Decisions worth knowing"): the zone the
//! server gave (rtdata `ServerTZ`, `MachineTZ` by SET OPTIONS or the
//! DevParameters table; the latest wins and is kept across restarts), else
//! the system's zone (`TZ`, else `/etc/localtime`, with its own DST rules),
//! else `device.utc_offset_minutes`. Zone rules come from `tz-rs` (TZif and
//! POSIX TZ parsing, the same code chrono carries privately); this file
//! only chooses which file or string to read.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDateTime, TimeZone, Utc};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("{0:?} is not a zone: expected an offset such as +0800, -05:30 or UTC")]
    NotAZone(String),
    #[error("{0:?} is outside -14:00..+14:00")]
    OutOfRange(String),
}

/// Largest offset a zone may have (UTC+14:00, Kiribati).
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// A fixed offset from UTC, as the server gives its zone (`ServerTZ=+0800`).
/// It is standard time: the server's DST, if any, is its DST table (DLST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneOffset {
    minutes: i32,
}

impl ZoneOffset {
    pub const UTC: ZoneOffset = ZoneOffset { minutes: 0 };

    pub fn from_minutes(minutes: i32) -> Result<ZoneOffset, ZoneError> {
        if minutes.abs() > MAX_OFFSET_MINUTES {
            return Err(ZoneError::OutOfRange(format!("{minutes} minutes")));
        }
        Ok(ZoneOffset { minutes })
    }

    pub fn minutes(self) -> i32 {
        self.minutes
    }

    /// Parses a zone as servers write it: `±HHMM` (ServerTZ, 12.5.1), also
    /// `±HH:MM`, `±HH`, `±HMM`, each optionally after `UTC`/`GMT`, and a
    /// bare `UTC`, `GMT` or `Z`. A number without a sign is refused: it may
    /// be hours, minutes or a zone index, and guessing would shift every rule.
    pub fn parse(text: &str) -> Result<ZoneOffset, ZoneError> {
        let not_a_zone = || ZoneError::NotAZone(text.chars().take(40).collect());
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let rest = upper
            .strip_prefix("UTC")
            .or_else(|| upper.strip_prefix("GMT"))
            .unwrap_or(&upper);
        if rest.is_empty() && t.len() >= 3 || upper == "Z" {
            return Ok(ZoneOffset::UTC);
        }
        let (sign, digits) = match rest.as_bytes().first() {
            Some(b'+') => (1, &rest[1..]),
            Some(b'-') => (-1, &rest[1..]),
            _ => return Err(not_a_zone()),
        };
        let (hours, mins) = match digits.split_once(':') {
            Some((h, m)) if (1..=2).contains(&h.len()) && m.len() == 2 => (h, m),
            Some(_) => return Err(not_a_zone()),
            None => match digits.len() {
                1 | 2 => (digits, "00"),
                3 | 4 => digits.split_at(digits.len() - 2),
                _ => return Err(not_a_zone()),
            },
        };
        if !hours
            .bytes()
            .chain(mins.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(not_a_zone());
        }
        let (h, m) = match (hours.parse::<i32>(), mins.parse::<i32>()) {
            (Ok(h), Ok(m)) if m < 60 => (h, m),
            _ => return Err(not_a_zone()),
        };
        ZoneOffset::from_minutes(sign * (h * 60 + m))
            .map_err(|_| ZoneError::OutOfRange(text.chars().take(40).collect()))
    }

    /// `+0800`, the form the options table keeps.
    pub fn to_text(self) -> String {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.abs();
        format!("{sign}{:02}{:02}", m / 60, m % 60)
    }
}

/// The system's zone, with its own DST rules.
#[derive(Debug, Clone)]
pub struct SystemZone {
    /// `Europe/Berlin`, the TZ string, or the file read.
    pub name: String,
    /// Shared: the clock hands out a copy of the zone at every reading.
    tz: Arc<tz::TimeZone>,
}

impl SystemZone {
    fn new(name: &str, tz: tz::TimeZone) -> Self {
        SystemZone {
            name: name.to_owned(),
            tz: Arc::new(tz),
        }
    }

    /// The offset at `utc`; the zone data cover every time the clock
    /// believes (`sync::Bounds`), so a lookup error only means UTC.
    fn offset(&self, utc: DateTime<Utc>) -> i32 {
        self.tz
            .find_local_time_type(utc.timestamp())
            .map_or(0, tz::LocalTimeType::ut_offset)
    }

    /// The offset without the zone's DST: the smaller of the offsets in
    /// mid-January and mid-July of that year when the current offset is
    /// the larger one (DST in force, either hemisphere), else the current
    /// offset. The smaller is standard time even in zones whose data call
    /// winter time DST (Europe/Dublin).
    fn standard_seconds(&self, utc: DateTime<Utc>) -> i32 {
        let now = self.offset(utc);
        let probe = |month| {
            Utc.with_ymd_and_hms(utc.year(), month, 15, 12, 0, 0)
                .single()
                .map_or(now, |t| self.offset(t))
        };
        let (winter, summer) = (probe(1), probe(7));
        if winter != summer && now == winter.max(summer) {
            winter.min(summer)
        } else {
            now
        }
    }
}

/// Where local time comes from; see the module text for the precedence.
#[derive(Debug, Clone)]
pub enum LocalZone {
    /// Given by the server (ServerTZ / MachineTZ).
    Server(ZoneOffset),
    /// The system's zone (TZ, /etc/localtime).
    System(SystemZone),
    /// `device.utc_offset_minutes`.
    Configured(i32),
}

impl LocalZone {
    /// Offset from UTC at `utc` in seconds, the zone's own DST included.
    pub fn offset_seconds(&self, utc: DateTime<Utc>) -> i32 {
        match self {
            LocalZone::Server(o) => o.minutes * 60,
            LocalZone::System(z) => z.offset(utc),
            LocalZone::Configured(m) => m * 60,
        }
    }

    /// Offset from UTC at `utc` in seconds, without the zone's own DST.
    pub fn standard_offset_seconds(&self, utc: DateTime<Utc>) -> i32 {
        match self {
            LocalZone::System(z) => z.standard_seconds(utc),
            other => other.offset_seconds(utc),
        }
    }

    /// Local time at `utc`, with the zone's own DST.
    pub fn local(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        shift(utc, self.offset_seconds(utc))
    }

    /// Local standard time at `utc`: what a DST table (DLST) adjusts.
    pub fn standard(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        shift(utc, self.standard_offset_seconds(utc))
    }

    /// For logs: `server zone +0800`.
    pub fn describe(&self) -> String {
        match self {
            LocalZone::Server(o) => format!("server zone {}", o.to_text()),
            LocalZone::System(z) => format!("system zone {}", z.name),
            LocalZone::Configured(m) => format!("device.utc_offset_minutes = {m}"),
        }
    }
}

fn shift(utc: DateTime<Utc>, seconds: i32) -> NaiveDateTime {
    (utc + ChronoDuration::seconds(i64::from(seconds))).naive_utc()
}

/// Largest zone file read (TZif files are a few KB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;

/// Where the system's zone is looked up: the `TZ` variable, the
/// `/etc/localtime` file and the zone directory. Tests give their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemZoneSource {
    /// The value of `TZ`; `None` when unset.
    pub tz: Option<String>,
    pub localtime: PathBuf,
    pub zoneinfo: PathBuf,
}

impl SystemZoneSource {
    /// This process's environment and the standard paths.
    pub fn from_env() -> Self {
        SystemZoneSource {
            tz: std::env::var("TZ").ok(),
            localtime: PathBuf::from("/etc/localtime"),
            zoneinfo: PathBuf::from("/usr/share/zoneinfo"),
        }
    }

    /// A system without a zone (tests that must not depend on the machine).
    pub fn none() -> Self {
        SystemZoneSource {
            tz: None,
            localtime: PathBuf::new(),
            zoneinfo: PathBuf::new(),
        }
    }

    /// The zone as the C library would read it: `TZ` when set (empty
    /// means UTC; `:` is dropped; a path or zone name is read as TZif,
    /// anything else as a POSIX rule such as `CST-8`), else the localtime
    /// file. An unusable `TZ` is logged and the localtime file used.
    pub fn lookup(&self) -> Option<SystemZone> {
        if let Some(tz) = &self.tz {
            match self.zone_of_tz(tz) {
                Some(zone) => return Some(zone),
                None => log::warn!("TZ={tz:?} is not a zone this system has; ignoring it"),
            }
        }
        let path = &self.localtime;
        if path.as_os_str().is_empty() || !path.exists() {
            return None;
        }
        let name = std::fs::read_link(path)
            .ok()
            .and_then(|target| {
                let t = target.to_string_lossy().into_owned();
                t.split_once("zoneinfo/").map(|(_, n)| n.to_owned())
            })
            .unwrap_or_else(|| path.display().to_string());
        match read_tzif(&name, path) {
            Ok(zone) => Some(zone),
            Err(e) => {
                log::warn!("cannot read the system zone {}: {e}", path.display());
                None
            }
        }
    }

    fn zone_of_tz(&self, tz: &str) -> Option<SystemZone> {
        let value = tz.trim();
        let value = value.strip_prefix(':').unwrap_or(value);
        if value.is_empty() || value.eq_ignore_ascii_case("UTC") {
            return Some(SystemZone::new("UTC", tz::TimeZone::utc()));
        }
        if value.starts_with('/') {
            return read_tzif(value, Path::new(value)).ok();
        }
        if is_zone_name(value) && !self.zoneinfo.as_os_str().is_empty() {
            let path = self.zoneinfo.join(value);
            if path.is_file() {
                return read_tzif(value, &path).ok();
            }
        }
        // A rule such as `CST-8`: parsed without looking for files, which
        // were looked for above with the size cap.
        tz::TimeZoneSettings::new(&[], |_| Err("no zone files here".into()))
            .parse_posix_tz(value)
            .ok()
            .map(|tz| SystemZone::new(value, tz))
    }
}

/// A relative path of letters, digits, `_+-` and `/`, never `..`.
fn is_zone_name(s: &str) -> bool {
    s.len() <= 64
        && !s.starts_with('/')
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part != "."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
        })
}

fn read_tzif(name: &str, path: &Path) -> Result<SystemZone, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TZIF_BYTES + 1).read_to_end(&mut data))
        .map_err(|e| e.to_string())?;
    if data.len() as u64 > MAX_TZIF_BYTES {
        return Err(format!("larger than {MAX_TZIF_BYTES} bytes"));
    }
    let tz = tz::TimeZone::from_tz_data(&data).map_err(|_| "not a TZif file".to_owned())?;
    Ok(SystemZone::new(name, tz))
}

/// The zone at start: the server's kept one (`persisted`, as `+0800`),
/// else the system's, else the configured offset.
pub fn startup_zone(
    persisted: Option<&str>,
    system: &SystemZoneSource,
    configured_minutes: i32,
) -> LocalZone {
    if let Some(text) = persisted {
        match ZoneOffset::parse(text) {
            Ok(o) => return LocalZone::Server(o),
            Err(e) => log::warn!("the kept server zone is unusable ({e}); ignoring it"),
        }
    }
    match system.lookup() {
        Some(zone) => {
            if configured_minutes != 0 {
                log::warn!(
                    "device.utc_offset_minutes = {configured_minutes} is not used: the system zone {} applies until the server gives one",
                    zone.name
                );
            }
            LocalZone::System(zone)
        }
        None => LocalZone::Configured(configured_minutes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn server_zones_parse_in_the_forms_servers_write() {
        for (text, minutes) in [
            ("+0800", 480),
            ("-0300", -180),
            ("+05:30", 330),
            ("-8", -480),
            ("+930", 570),
            ("UTC+8", 480),
            ("GMT-03:00", -180),
            ("UTC", 0),
            ("Z", 0),
            (" +0000 ", 0),
            ("+1400", 840),
        ] {
            assert_eq!(
                ZoneOffset::parse(text).map(ZoneOffset::minutes),
                Ok(minutes),
                "{text}"
            );
        }
        for bad in [
            "",
            "8",
            "0800",
            "+",
            "+08:0",
            "+0860",
            "+12345",
            "Asia/Shanghai",
            "+08x0",
            "+-800",
        ] {
            assert!(
                matches!(ZoneOffset::parse(bad), Err(ZoneError::NotAZone(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            ZoneOffset::parse("+1500"),
            Err(ZoneError::OutOfRange(_))
        ));
        assert_eq!(ZoneOffset::parse("-05:30").unwrap().to_text(), "-0530");
        assert_eq!(ZoneOffset::UTC.to_text(), "+0000");
    }

    fn source(tz: Option<&str>) -> SystemZoneSource {
        SystemZoneSource {
            tz: tz.map(str::to_owned),
            ..SystemZoneSource::none()
        }
    }

    #[test]
    fn a_posix_tz_value_carries_its_dst_rules() {
        let zone = LocalZone::System(source(Some("CET-1CEST,M3.5.0,M10.5.0/3")).lookup().unwrap());
        // Winter: +1; summer: +2 with DST, +1 standard.
        assert_eq!(zone.offset_seconds(utc(2024, 1, 15, 12, 0)), 3600);
        assert_eq!(zone.offset_seconds(utc(2024, 7, 1, 12, 0)), 7200);
        assert_eq!(zone.standard_offset_seconds(utc(2024, 7, 1, 12, 0)), 3600);
        assert_eq!(
            zone.local(utc(2024, 7, 1, 12, 0)).to_string(),
            "2024-07-01 14:00:00"
        );
        assert_eq!(
            zone.standard(utc(2024, 7, 1, 12, 0)).to_string(),
            "2024-07-01 13:00:00"
        );
        let east = source(Some("CST-8")).lookup().unwrap();
        assert_eq!(
            LocalZone::System(east).offset_seconds(utc(2024, 7, 1, 0, 0)),
            8 * 3600
        );
    }

    #[test]
    fn tz_forms_follow_the_c_library() {
        assert_eq!(source(Some("")).lookup().unwrap().name, "UTC");
        assert_eq!(source(Some(":UTC")).lookup().unwrap().name, "UTC");
        assert!(source(Some("not a zone at all!")).lookup().is_none());
        assert!(
            source(None).lookup().is_none(),
            "no TZ and no localtime file"
        );
        // Zone names never leave the zone directory.
        assert!(!is_zone_name("../../etc/passwd"));
        assert!(!is_zone_name("/etc/passwd"));
        assert!(is_zone_name("America/Argentina/Buenos_Aires"));
        assert!(is_zone_name("Etc/GMT+8"));
    }

    #[test]
    fn a_tzif_file_is_read_as_the_localtime_file() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = dir.path().join("localtime");
        std::fs::write(&fixture, SHANGHAI_TZIF).unwrap();
        let src = SystemZoneSource {
            tz: None,
            localtime: fixture.clone(),
            zoneinfo: PathBuf::new(),
        };
        let zone = LocalZone::System(src.lookup().unwrap());
        assert_eq!(zone.offset_seconds(utc(2024, 7, 1, 0, 0)), 8 * 3600);
        // A TZ path names the same file.
        let by_path = source(Some(&format!(":{}", fixture.display()))).lookup();
        assert!(by_path.is_some());
        // Not TZif: no zone, and no panic.
        std::fs::write(&fixture, b"TZif garbage").unwrap();
        assert!(src.lookup().is_none());
        // A directory is not a zone file.
        let dir_src = SystemZoneSource {
            localtime: dir.path().to_path_buf(),
            ..src
        };
        assert!(dir_src.lookup().is_none());
    }

    #[test]
    fn the_server_zone_comes_first_then_the_system_then_the_config() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            startup_zone(Some("+0800"), &source(Some("CST-8")), 60),
            LocalZone::Server(o) if o.minutes() == 480
        ));
        assert!(matches!(
            startup_zone(None, &source(Some("EST5")), 60),
            LocalZone::System(z) if z.name == "EST5"
        ));
        assert!(matches!(
            startup_zone(Some("garbage"), &source(None), 60),
            LocalZone::Configured(60)
        ));
        let missing = SystemZoneSource {
            localtime: dir.path().join("none"),
            ..SystemZoneSource::none()
        };
        assert!(matches!(
            startup_zone(None, &missing, -120),
            LocalZone::Configured(-120)
        ));
    }

    /// Asia/Shanghai of tzdata 2025b (public domain): +08:00 without DST
    /// since 1991.
    pub(crate) const SHANGHAI_TZIF: &[u8] = include_bytes!("testdata/shanghai.tzif");
}
