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
                "registrycode" => {
                    self.registry_code = Some(value.to_owned());
                    true
                }
                "sessionid" => {
                    self.session_id = value.to_owned();
                    true
                }
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
                "errordelay" => set(&mut self.error_delay, seconds(value, 1, 3600)),
                "requestdelay" => set(&mut self.request_delay, seconds(value, 1, 3600)),
                "transtimes" => set(&mut self.trans_times, parse_trans_times(value)),
                "transinterval" => set(
                    &mut self.trans_interval,
                    parse_u64(value, 0, 24 * 60).map(|m| Duration::from_secs(m * 60)),
                ),
                "transtables" => {
                    self.trans_tables = value.split_whitespace().map(str::to_owned).collect();
                    true
                }
                "realtime" => set(&mut self.realtime, parse_u64(value, 0, 1).map(|v| v == 1)),
                "timeoutsec" => set(&mut self.timeout, seconds(value, 1, 600)),
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
                    "server parameter {key}={value:?} is invalid; keeping the previous value"
                );
            }
        }
    }

    /// The protocol version both sides speak: the lower one (Appendix 13).
    pub fn negotiated(&self) -> ProtocolVersion {
        self.server_protocol
            .min(crate::protocol::DEVICE_PUSH_VERSION)
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

fn seconds(value: &str, min: u64, max: u64) -> Option<Duration> {
    parse_u64(value, min, max).map(Duration::from_secs)
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
