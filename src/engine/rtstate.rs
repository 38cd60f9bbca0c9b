//! The real-time state record of 10.3: `time=…\tsensor=AABB\trelay=CC\talarm=DDEEFFGGHHIIJJKK`.
//!
//! Encoding as the text of 10.3 says (its example, from a one-door device,
//! shows shorter fields):
//! - `sensor`: two bits per door, door 1 in the lowest bits of the first byte
//!   (AA, doors 1–4), `00` no sensor, `01` closed, `10` open. The second
//!   byte (BB, doors 5–8) is sent only by boards with more than four doors:
//!   the spec's captured device sends one byte (`sensor=00`), and a server
//!   that reads the field as one hex number took a 4-door board's `5500`
//!   for doors 5–8;
//! - `relay`: one bit per door, door 1 the lowest; the text's "0 = connected,
//!   1 = disconnected" is read, as deployed servers show it, as 1 = relay
//!   energised (lock released);
//! - `alarm`: one byte per door for doors 1–8, bit 0 (value 1) the first alarm
//!   of the list (forced open), value 2 tamper, … value 16 door held open.

/// Alarm bits of one door's byte, in 10.3's order.
pub mod alarm {
    pub const FORCED_OPEN: u8 = 0x01;
    pub const TAMPER: u8 = 0x02;
    pub const DURESS_PASSWORD: u8 = 0x04;
    pub const DURESS_FINGERPRINT: u8 = 0x08;
    pub const HELD_OPEN: u8 = 0x10;
    pub const MAINS_FAILURE: u8 = 0x20;
    pub const BATTERY_FAILURE: u8 = 0x40;
    pub const READER_TAMPER: u8 = 0x80;
}

/// The door sensor as 10.3 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorReport {
    NoSensor,
    Closed,
    Open,
}

/// One door's contribution to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorReport {
    pub sensor: SensorReport,
    pub relay_on: bool,
    pub alarms: u8,
}

/// The three state fields (without `time`), doors 1–8; doors past 8 are not
/// representable in 10.3 and are left out.
pub fn state_fields(doors: &[DoorReport]) -> String {
    let mut sensor = 0u16;
    let mut relay = 0u8;
    let mut alarms = [0u8; 8];
    for (i, d) in doors.iter().take(8).enumerate() {
        let bits: u16 = match d.sensor {
            SensorReport::NoSensor => 0b00,
            SensorReport::Closed => 0b01,
            SensorReport::Open => 0b10,
        };
        // Doors 1-4 in the first byte (AA), 5-8 in the second (BB).
        let (byte, slot) = (i / 4, i % 4);
        sensor |= bits << (slot * 2 + if byte == 0 { 8 } else { 0 });
        if d.relay_on {
            relay |= 1 << i;
        }
        alarms[i] = d.alarms;
    }
    let alarm_hex: String = alarms.iter().map(|b| format!("{b:02X}")).collect();
    let sensor = if doors.len() <= 4 {
        format!("{:02X}", sensor >> 8)
    } else {
        format!("{sensor:04X}")
    };
    format!("sensor={sensor}\trelay={relay:02X}\talarm={alarm_hex}")
}

/// The whole record line for the outbox.
pub fn record(time: &str, doors: &[DoorReport]) -> String {
    format!("time={time}\t{}", state_fields(doors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(sensor: SensorReport, relay_on: bool, alarms: u8) -> DoorReport {
        DoorReport {
            sensor,
            relay_on,
            alarms,
        }
    }

    #[test]
    fn four_closed_doors_one_released_one_tampered() {
        let doors = [
            d(SensorReport::Closed, false, alarm::TAMPER),
            d(SensorReport::Open, true, 0),
            d(SensorReport::NoSensor, false, 0),
            d(
                SensorReport::Closed,
                false,
                alarm::HELD_OPEN | alarm::FORCED_OPEN,
            ),
        ];
        assert_eq!(
            state_fields(&doors),
            "sensor=49\trelay=02\talarm=0200001100000000"
        );
        // Four closed doors: one byte, not the `5500` read as doors 5-8.
        let closed = [d(SensorReport::Closed, false, 0); 4];
        assert!(state_fields(&closed).starts_with("sensor=55\t"));
    }

    #[test]
    fn the_fifth_door_lands_in_the_second_sensor_byte() {
        let mut doors = vec![d(SensorReport::NoSensor, false, 0); 5];
        doors[4] = d(SensorReport::Open, true, 0);
        assert_eq!(
            state_fields(&doors),
            "sensor=0002\trelay=10\talarm=0000000000000000"
        );
        assert_eq!(
            record(
                "2024-01-01 00:00:00",
                &[d(SensorReport::NoSensor, false, 0)]
            ),
            "time=2024-01-01 00:00:00\tsensor=00\trelay=00\talarm=0000000000000000"
        );
    }
}
