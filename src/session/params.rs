//! The server's configuration parameters (7.1, 7.5): parsed from its reply,
//! applied to the session and persisted so they survive a restart.

use crate::protocol::kv::KeyValues;
use crate::protocol::ProtocolVersion;
use crate::store::{Store, StoreError};
use std::time::Duration;

/// Keys of 7.1/7.5 that are persisted as options under their own names.
pub const PERSISTED_KEYS: &[&str] = &[
    "RegistryCode",
    "SessionID",
    "ServerVersion",
    "ServerName",
    "PushProtVer",
    "ErrorDelay",
    "RequestDelay",
    "TransTimes",
    "TransInterval",
    "TransTables",
    "Realtime",
    "TimeoutSec",
    "BioPhotoFun",
    "BioDataFun",
    "MultiBioDataSupport",
    "MultiBioPhotoSupport",
    "NewVFStyles",
    "IRTempUnitTrans",
    "QRCodeDecryptType",
    "QRCodeDecryptKey",
];

/// Longest RegistryCode or SessionID kept. Deployed servers send some tens
/// of characters; the token is an MD5 over them, so length buys nothing.
pub const MAX_IDENTITY_LEN: usize = 128;

/// Whether `value` may be kept as a RegistryCode or SessionID: at most
/// [`MAX_IDENTITY_LEN`] printable ASCII characters, no space or control
/// character. A truncated, non-UTF-8 or binary answer is not one, and a
/// token made from it would only be wrong.
pub fn valid_identity(value: &str) -> bool {
    value.len() <= MAX_IDENTITY_LEN && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Refuses a configuration answer whose RegistryCode or SessionID could not
/// make a right token: nothing of it is kept, and the session reconnects.
pub fn check_answer(kv: &KeyValues, endpoint: &str) -> Result<(), super::SessionError> {
    check_identity(kv).map_err(|detail| super::SessionError::BadReply {
        endpoint: endpoint.into(),
        detail,
    })
}

/// Checks the RegistryCode and SessionID of a configuration answer before
/// anything of it is applied or kept; the error says which key is bad.
pub fn check_identity(kv: &KeyValues) -> Result<(), String> {
    for key in ["RegistryCode", "SessionID"] {
        if let Some(value) = kv.get(key) {
            if !valid_identity(value) {
                return Err(format!(
                    "{key} is not 1 to {MAX_IDENTITY_LEN} printable ASCII characters ({} bytes: {:?})",
                    value.len(),
                    value.chars().take(40).collect::<String>()
                ));
            }
        }
    }
    Ok(())
}

/// The parameters the session runs by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerParams {
    pub registry_code: Option<String>,
    pub session_id: String,
    pub server_version: Option<String>,
    pub server_name: Option<String>,
    /// The server's PushProtVer; 3.0.1 when it names none (Appendix 13).
    pub server_protocol: ProtocolVersion,
    pub error_delay: Duration,
    pub request_delay: Duration,
    /// Times of day (hour, minute) at which pending data is uploaded when not real-time.
    pub trans_times: Vec<(u8, u8)>,
    pub trans_interval: Duration,
    pub trans_tables: Vec<String>,
    pub realtime: bool,
    pub timeout: Duration,
    pub bio_photo_fun: bool,
    pub bio_data_fun: bool,
    pub multi_bio_data_support: Option<String>,
    pub multi_bio_photo_support: Option<String>,
}

impl ServerParams {
    /// The spec's defaults, with the local config's delays and timeout.
    pub fn defaults(error_delay: Duration, request_delay: Duration, timeout: Duration) -> Self {
        ServerParams {
            registry_code: None,
            session_id: String::new(),
            server_version: None,
            server_name: None,
            server_protocol: ProtocolVersion::DEFAULT_SERVER,
            error_delay,
            request_delay,
            trans_times: vec![(12, 30), (14, 30)],
            trans_interval: Duration::from_secs(120),
            trans_tables: vec!["User".into(), "Transaction".into()],
            realtime: true,
            timeout,
            bio_photo_fun: false,
            bio_data_fun: false,
            multi_bio_data_support: None,
            multi_bio_photo_support: None,
        }
    }

    /// Applies every key the server sent; unknown keys are normal and only
    /// logged at debug level (interop.md). Bad values keep the old value.
    pub fn apply(&mut self, kv: &KeyValues) {
        for (key, value) in kv.iter() {
            let k = key.to_ascii_lowercase();
            let ok = match k.as_str() {
                "registrycode" => set(
                    &mut self.registry_code,
                    valid_identity(value).then(|| Some(value.to_owned())),
                ),
                "sessionid" => set(
                    &mut self.session_id,
                    valid_identity(value).then(|| value.to_owned()),
                ),
                "serverversion" => {
                    self.server_version = Some(value.to_owned());
                    true
                }
                "servername" => {
                    self.server_name = Some(value.to_owned());
                    true
                }
                // Deployed servers send either name (interop.md).
                "pushprotver" | "pushversion" => {
                    set(&mut self.server_protocol, ProtocolVersion::parse(value))
                }
                "errordelay" => set(&mut self.error_delay, seconds(key, value, 1, 3600)),
                "requestdelay" => set(&mut self.request_delay, seconds(key, value, 1, 3600)),
                "transtimes" => set(&mut self.trans_times, parse_trans_times(value)),
                "transinterval" => set(
                    &mut self.trans_interval,
                    bounded(key, value, 0, 24 * 60).map(|m| Duration::from_secs(m * 60)),
                ),
                "transtables" => {
                    self.trans_tables = value.split_whitespace().map(str::to_owned).collect();
                    true
                }
                "realtime" => set(&mut self.realtime, parse_u64(value, 0, 1).map(|v| v == 1)),
                "timeoutsec" => set(&mut self.timeout, seconds(key, value, 1, 600)),
                "biophotofun" => set(
                    &mut self.bio_photo_fun,
                    parse_u64(value, 0, 1).map(|v| v == 1),
                ),
                "biodatafun" => set(
                    &mut self.bio_data_fun,
                    parse_u64(value, 0, 1).map(|v| v == 1),
                ),
                "multibiodatasupport" => {
                    self.multi_bio_data_support = Some(value.to_owned());
                    true
                }
                "multibiophotosupport" => {
                    self.multi_bio_photo_support = Some(value.to_owned());
                    true
                }
                _ => {
                    log::debug!("server parameter {key}={value} is not used by this firmware");
                    true
                }
            };
            if !ok {
                log::warn!(
                    "server parameter {key}={} is invalid; keeping the previous value",
                    crate::config::shown(value)
                );
            }
        }
    }

    /// The protocol version both sides speak: the lower one (Appendix 13).
    pub fn negotiated(&self) -> ProtocolVersion {
        self.server_protocol
            .min(crate::protocol::DEVICE_PUSH_VERSION)
    }

    /// The protocol version in use as the last session persisted it, for
    /// threads without a session of their own (the engine's error log).
    pub fn persisted_protocol(store: &Store) -> ProtocolVersion {
        crate::store::held_report::persisted_protocol(store)
    }

    /// Persists the server-sent keys of `kv` that this firmware keeps.
    pub fn persist(kv: &KeyValues, store: &mut Store) -> Result<(), StoreError> {
        let pairs: Vec<(&str, &str)> = kv
            .iter()
            .filter_map(|(k, v)| {
                let canonical = if k.eq_ignore_ascii_case("PushVersion") {
                    Some("PushProtVer")
                } else {
                    PERSISTED_KEYS
                        .iter()
                        .copied()
                        .find(|p| p.eq_ignore_ascii_case(k))
                };
                canonical.map(|c| (c, v))
            })
            .collect();
        store.set_options(pairs)
    }

    /// Loads the persisted keys over the defaults.
    pub fn load(&mut self, store: &Store) -> Result<(), StoreError> {
        let mut kv = KeyValues::default();
        for key in PERSISTED_KEYS {
            if let Some(v) = store.option(key)? {
                kv.0.push(((*key).to_owned(), v));
            }
        }
        self.apply(&kv);
        Ok(())
    }
}

/// The protocol version an answer announces (`PushProtVer`, or
/// `PushVersion` as some servers write it), if it names one.
pub fn announced_version(kv: &KeyValues) -> Option<ProtocolVersion> {
    kv.iter()
        .find(|(k, _)| {
            k.eq_ignore_ascii_case("PushProtVer") || k.eq_ignore_ascii_case("PushVersion")
        })
        .and_then(|(_, v)| ProtocolVersion::parse(v))
}

fn set<T>(slot: &mut T, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

fn parse_u64(value: &str, min: u64, max: u64) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (min..=max).contains(v))
}

/// A whole number clamped into `min..=max`, with a log line when it was not
/// in it: a server asking for a week's ErrorDelay gets the longest we allow,
/// and no value can make time arithmetic overflow. Not a number: `None`.
fn bounded(key: &str, value: &str, min: u64, max: u64) -> Option<u64> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only too many of them fail to parse.
    let n = digits.parse::<u64>().unwrap_or(u64::MAX);
    let clamped = n.clamp(min, max);
    if clamped != n {
        log::warn!(
            "server parameter {key}={} is outside {min}..={max}; using {clamped}",
            crate::config::shown(digits)
        );
    }
    Some(clamped)
}

fn seconds(key: &str, value: &str, min: u64, max: u64) -> Option<Duration> {
    bounded(key, value, min, max).map(Duration::from_secs)
}

/// `12:30;14:30`. The spec's own example `00:0014:00` lost its separator; a
/// run of HH:MM pairs without separators is accepted too.
pub fn parse_trans_times(value: &str) -> Option<Vec<(u8, u8)>> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    for part in compact.split([';', ',']).filter(|p| !p.is_empty()) {
        let bytes = part.as_bytes();
        if bytes.len() % 5 != 0 {
            return None;
        }
        for chunk in part.as_bytes().chunks(5) {
            let s = std::str::from_utf8(chunk).ok()?;
            let (h, m) = s.split_once(':')?;
            let h: u8 = h.parse().ok()?;
            let m: u8 = m.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            out.push((h, m));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ServerParams {
        ServerParams::defaults(
            Duration::from_secs(30),
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn applies_every_key_and_tolerates_junk() {
        let mut p = defaults();
        p.apply(&KeyValues::parse_lines(
            "registry=ok\nRegistryCode=abc\nSessionID=S1\nPushVersion=3.0.1\nErrorDelay=60\nRequestDelay=2\nTransTimes=00:0014:00\nTransInterval=1\nTransTables=User Transaction\nRealtime=0\nTimeoutSec=x\nFancyNewKey=1",
        ));
        assert_eq!(p.registry_code.as_deref(), Some("abc"));
        assert_eq!(p.session_id, "S1");
        assert_eq!(p.error_delay, Duration::from_secs(60));
        assert_eq!(p.request_delay, Duration::from_secs(2));
        assert_eq!(p.trans_times, vec![(0, 0), (14, 0)]);
        assert_eq!(p.trans_interval, Duration::from_secs(60));
        assert!(!p.realtime);
        assert_eq!(p.timeout, Duration::from_secs(10)); // "x" ignored
        assert_eq!(p.negotiated(), ProtocolVersion::new(3, 0, 1));
    }

    #[test]
    fn registry_code_and_session_id_must_be_printable_ascii() {
        assert!(valid_identity("Uy47fxftP3"));
        assert!(valid_identity(""));
        assert!(valid_identity(&"a".repeat(MAX_IDENTITY_LEN)));
        assert!(!valid_identity(&"a".repeat(MAX_IDENTITY_LEN + 1)));
        for bad in ["张三", "ab cd", "ab\u{7}cd", "\u{fffd}", "tab\there"] {
            assert!(!valid_identity(bad), "{bad:?}");
        }
        assert!(check_identity(&KeyValues::parse_lines("RegistryCode=abc\nSessionID=S1")).is_ok());
        let e = check_identity(&KeyValues::parse_lines(
            "RegistryCode=abc\nSessionID=\u{1}x",
        ))
        .unwrap_err();
        assert!(e.contains("SessionID"), "{e}");
        // A bad value already stored (older firmware) is not applied either.
        let mut p = defaults();
        p.apply(&KeyValues::parse_lines("RegistryCode=good"));
        p.apply(&KeyValues::parse_lines(
            "RegistryCode=b\u{ff}d\nSessionID=\u{0}",
        ));
        assert_eq!(p.registry_code.as_deref(), Some("good"));
        assert_eq!(p.session_id, "");
    }

    #[test]
    fn numbers_out_of_range_are_clamped_and_junk_is_ignored() {
        let mut p = defaults();
        p.apply(&KeyValues::parse_lines(
            "ErrorDelay=18446744073709551616000\nRequestDelay=0\nTimeoutSec=100000\nTransInterval=9223372036854775807",
        ));
        assert_eq!(p.error_delay, Duration::from_secs(3600));
        assert_eq!(p.request_delay, Duration::from_secs(1));
        assert_eq!(p.timeout, Duration::from_secs(600));
        assert_eq!(p.trans_interval, Duration::from_secs(24 * 3600));
        p.apply(&KeyValues::parse_lines(
            "ErrorDelay=-5\nRequestDelay=1e9\nTimeoutSec=\nTransInterval=+3",
        ));
        assert_eq!(p.error_delay, Duration::from_secs(3600), "kept");
        assert_eq!(p.request_delay, Duration::from_secs(1), "kept");
        assert_eq!(p.timeout, Duration::from_secs(600), "kept");
        assert_eq!(p.trans_interval, Duration::from_secs(24 * 3600), "kept");
    }

    #[test]
    fn negotiation_takes_the_lower_version() {
        let mut p = defaults();
        assert_eq!(p.negotiated(), ProtocolVersion::new(3, 0, 1)); // server named none
        p.apply(&KeyValues::parse_lines("PushProtVer=3.1.1"));
        assert_eq!(p.negotiated(), ProtocolVersion::new(3, 1, 1));
        p.apply(&KeyValues::parse_lines("PushProtVer=4.0.0"));
        assert_eq!(p.negotiated(), ProtocolVersion::new(3, 1, 2));
    }

    #[test]
    fn trans_times_forms() {
        assert_eq!(
            parse_trans_times("12:30;14:30"),
            Some(vec![(12, 30), (14, 30)])
        );
        assert_eq!(parse_trans_times("25:00"), None);
        assert_eq!(parse_trans_times(""), Some(vec![]));
    }

    #[test]
    fn persisted_values_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let kv = KeyValues::parse_lines("ErrorDelay=77\nPushVersion=3.1.1\nSessionID=Z");
        ServerParams::persist(&kv, &mut store).unwrap();
        let mut p = defaults();
        p.load(&store).unwrap();
        assert_eq!(p.error_delay, Duration::from_secs(77));
        assert_eq!(p.server_protocol, ProtocolVersion::new(3, 1, 1));
        assert_eq!(p.session_id, "Z");
    }
}
