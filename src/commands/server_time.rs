//! What the server says about time (12.5.1, Appendix 12): its clock
//! (`SET OPTIONS DateTime`, local; rtdata `DateTime`, GMT) and its zone
//! (rtdata `ServerTZ`; `MachineTZ` by SET OPTIONS or the DevParameters
//! table). The zone becomes the device's local zone and is kept across
//! restarts as the internal option [`SERVER_ZONE_KEY`]; the clock's policy
//! ([`crate::clock::sync`]) decides what a time may move.

use crate::clock::zone::ZoneError;
use crate::clock::{Clock, LocalZone, TimeSource, Verdict, ZoneOffset};
use crate::link::{LinkError, ServerLink};
use crate::protocol::time::old_decode;
use crate::store::{Store, StoreError, SERVER_ZONE_KEY};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum ServerTimeError {
    #[error("rtdata type=time: {0}")]
    Link(#[from] LinkError),
    #[error("cannot keep the server's zone: {0}")]
    Store(#[from] StoreError),
}

/// Makes `zone` the device's local zone and keeps it for the next start.
/// `source` names where it came from, for the log.
pub fn adopt_zone(
    store: &Store,
    clock: &dyn Clock,
    zone: ZoneOffset,
    source: &str,
) -> Result<(), StoreError> {
    let text = zone.to_text();
    let kept = store.option(SERVER_ZONE_KEY)?;
    if kept.as_deref() != Some(text.as_str()) {
        store.set_option(SERVER_ZONE_KEY, &text)?;
    }
    let changed = !matches!(clock.zone(), LocalZone::Server(z) if z == zone);
    if changed {
        log::info!(
            "local zone is now the server's {text} (from {source}; was {})",
            clock.zone().describe()
        );
        clock.set_zone(LocalZone::Server(zone));
    }
    Ok(())
}

/// `MachineTZ` (Appendix 12) as a zone, or why it is not one.
pub fn parse_machine_tz(value: &str) -> Result<ZoneOffset, ZoneError> {
    ZoneOffset::parse(value)
}

/// The zone a `DATA UPDATE DevParameters` body sets: the `Value` of its
/// last record named `MachineTZ`, if any. Lines that do not parse are
/// left to the DATA command, which refuses them.
pub fn machine_tz_in_records(body: &str) -> Result<Option<ZoneOffset>, ZoneError> {
    let mut zone = None;
    for line in body.split('\n') {
        let Ok(fields) = crate::protocol::record::parse_fields(line) else {
            continue;
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        if field("Name").is_some_and(|n| n.trim().eq_ignore_ascii_case("MachineTZ")) {
            zone = Some(parse_machine_tz(field("Value").unwrap_or(""))?);
        }
    }
    Ok(zone)
}

/// The UTC instant at which the device's wall clock (zone and DST table
/// of `store`) reads `local`: how `SET OPTIONS DateTime`, the server's
/// local time, becomes the clock's UTC. In a repeated hour the later reading wins.
pub fn utc_of_wall_time(store: &Store, clock: &dyn Clock, local: NaiveDateTime) -> DateTime<Utc> {
    let rules = crate::engine::rules::dst(store.conn()).unwrap_or_default();
    let zone = clock.zone();
    let offset = zone.standard_offset_seconds(clock.now_utc());
    let mut utc = (local - ChronoDuration::seconds(i64::from(offset))).and_utc();
    // The first guess ignores DST; two corrections reach the reading.
    for _ in 0..2 {
        let error = rules.wall(&zone, utc) - local;
        if error.is_zero() {
            break;
        }
        utc -= error;
    }
    utc
}

/// What an rtdata `type=time` answer says: `DateTime=<Appendix 5, GMT>,ServerTZ=+0800`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerTime {
    pub utc: Option<DateTime<Utc>>,
    pub zone: Option<ZoneOffset>,
}

/// Parses an rtdata answer leniently: pairs separated by commas or line
/// breaks, keys in any case; `MachineTZ` stands for `ServerTZ` (a deployed
/// server answers so). Values that do not parse are logged and left out.
pub fn parse_server_time(body: &str) -> ServerTime {
    let mut out = ServerTime::default();
    for pair in body.split([',', '\n', '\r', '&']) {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("DateTime") {
            out.utc = v
                .parse::<u32>()
                .ok()
                .and_then(old_decode)
                .map(|t| t.and_utc());
            if out.utc.is_none() {
                log::warn!("rtdata DateTime={:?} is not Appendix 5 seconds", clip(v));
            }
        } else if k.eq_ignore_ascii_case("ServerTZ") || k.eq_ignore_ascii_case("MachineTZ") {
            match ZoneOffset::parse(v) {
                Ok(z) => out.zone = Some(z),
                Err(e) => log::warn!("rtdata {k}: {e}; keeping the local zone"),
            }
        }
    }
    out
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Asks the server for its time and zone (`GET /iclock/rtdata?SN=…&type=time`)
/// and applies both: after SET OPTIONS DateTime (12.5.1) and after every
/// connection. The zone is adopted even when the time is not believed.
pub fn ask_server_time(
    link: &mut dyn ServerLink,
    store: &Store,
    clock: &dyn Clock,
) -> Result<ServerTime, ServerTimeError> {
    let pq = format!("/iclock/rtdata?SN={}&type=time", link.serial());
    let reply = link.get(&pq)?;
    let answer = parse_server_time(&reply.text());
    if let Some(zone) = answer.zone {
        adopt_zone(store, clock, zone, "rtdata ServerTZ")?;
    }
    if let Some(utc) = answer.utc {
        if clock.offer(utc, TimeSource::RtData) == Verdict::OutOfBounds {
            log::warn!("the server's rtdata time {utc} is not believed; the clock keeps its time");
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    #[test]
    fn rtdata_answers_parse_as_the_spec_writes_them_and_as_servers_bend_them() {
        // 12.5.1's example: 583050990 is 2018-02-22 06:36:30 GMT.
        let t = parse_server_time("DateTime=583050990,ServerTZ=+0800");
        assert_eq!(
            t.utc,
            Some(Utc.with_ymd_and_hms(2018, 2, 22, 6, 36, 30).unwrap())
        );
        assert_eq!(t.zone.map(ZoneOffset::minutes), Some(480));
        let t = parse_server_time("datetime=583050990\r\nMachineTZ=-0300\r\n");
        assert_eq!(t.zone.map(ZoneOffset::minutes), Some(-180));
        let t = parse_server_time("DateTime=abc,ServerTZ=Asia/Shanghai,Junk");
        assert_eq!(t, ServerTime::default());
    }

    #[test]
    fn devparameters_records_name_the_machine_zone() {
        let zone = machine_tz_in_records(
            "ID=1\tName=IsSupportReaderEncrypt\tValue=0\nID=1\tName=MachineTZ\tValue=+0800",
        );
        assert_eq!(zone.unwrap().map(ZoneOffset::minutes), Some(480));
        assert_eq!(machine_tz_in_records("ID=1\tName=Other\tValue=8"), Ok(None));
        assert!(machine_tz_in_records("ID=1\tName=machinetz\tValue=8").is_err());
        assert!(machine_tz_in_records("ID=1\tName=MachineTZ").is_err());
    }

    #[test]
    fn the_adopted_zone_is_kept_and_becomes_local_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        adopt_zone(&store, &clock, ZoneOffset::parse("+0800").unwrap(), "test").unwrap();
        assert_eq!(
            store.option(SERVER_ZONE_KEY).unwrap().as_deref(),
            Some("+0800")
        );
        assert_eq!(clock.now_local().to_string(), "2026-01-01 08:00:00");
        // SET OPTIONS DateTime is the server's local time.
        let local = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap();
        assert_eq!(
            utc_of_wall_time(&store, &clock, local),
            Utc.with_ymd_and_hms(2026, 1, 1, 1, 30, 0).unwrap()
        );
    }

    #[test]
    fn wall_time_inverts_through_the_dst_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_option("DSTOn", "1").unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO dst_settings(year, start_time, end_time, loop) VALUES (2026, '03050002', '10050003', 1)",
                [],
            )
            .unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap());
        clock.set_zone(LocalZone::Configured(60));
        let local = chrono::NaiveDate::from_ymd_opt(2026, 7, 1)
            .unwrap()
            .and_hms_opt(14, 0, 0)
            .unwrap();
        // +1 standard, +1 DST: 12:00 UTC.
        assert_eq!(
            utc_of_wall_time(&store, &clock, local),
            Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap()
        );
    }
}
