//! The registration capability line of 7.4, built from the board and the
//! device options.

use crate::protocol::kv::KeyValues;

/// What the device is, as registration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    pub name: String,
    pub firmware_version: String,
    pub mac: Option<String>,
    pub lock_count: usize,
    pub reader_count: usize,
    pub aux_in_count: usize,
    pub aux_out_count: usize,
    pub max_package_size: usize,
    pub cmd_format: u8,
    /// The board has RS-485 (OSDP) readers.
    pub rs485_readers: bool,
}

/// Event codes (Appendix 2) this firmware can generate; they form the
/// `EventTypes` bitmap.
pub const SUPPORTED_EVENTS: &[u8] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 36, 37,
    38, 39, 40, 41, 42, 44, 45, 48, 63, 64, 65, 75, 100, 101, 102, 105, 200, 201, 202, 204, 205,
    206, 207, 208, 209, 214, 215, 220, 221, 225, 226, 227, 228, 229, 230, 232, 233, 234,
];

/// Events only boards with RS-485 readers generate: reader tamper 109 / 236, reader
/// offline 110 / online 237.
pub const RS485_READER_EVENTS: &[u8] = &[109, 110, 236, 237];

/// AccSupportFunList positions that come with RS-485 readers: 1 "485 reader
/// encryption" (the OSDP Secure Channel), 32 "mixed readers (Wiegand/485 reader)".
/// Position 13 "Control the 485 reader Led" waits for reader feedback.
pub const RS485_READER_FUNCTIONS: &[usize] = &[1, 32];

/// Verification modes (Appendix 3) this firmware supports: automatic, user
/// ID, password, card, card or password, card and password.
pub const SUPPORTED_VERIFY_MODES: &[u8] = &[0, 2, 3, 4, 7, 11];

/// Positions of AccSupportFunList (7.4) this firmware implements.
pub const ACC_SUPPORT_FUNCTIONS: &[usize] = &[
    0,  // reader disabling
    2,  // door locking
    3,  // emergency double on/off
    6,  // Wiegand format with site code
    7,  // multiple cards per user
    8,  // aux input and exit button controlled by time
    10, // Wiegand test
    11, // ACCOUNT command
    12, // per-user verification modes by time period
    14, // several Wiegand formats per door
    16, // separate super-user privilege table
    17, // door property table
    18, // reader property table
    19, // aux input property table
    20, // aux output property table
    21, // door parameter table
];

/// `EventTypes`: 32 bytes as 64 hex digits, bit n of byte n/8 set for event
/// n, lowest bit first within each byte (7.4's worked example: BF has bit 6 clear).
pub fn event_types_bitmap(events: &[u8]) -> String {
    let mut bytes = [0u8; 32];
    for &e in events {
        bytes[usize::from(e / 8)] |= 1 << (e % 8);
    }
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `VerifyStyles`: 32 bits as 8 hex digits, position n is mode n counted from
/// the most significant bit of the first byte (Appendix 3's worked example:
/// FB1E1F00 has position 5 clear).
pub fn verify_styles_bitmap(modes: &[u8]) -> String {
    let mut bits: u32 = 0;
    for &m in modes.iter().filter(|m| **m < 32) {
        bits |= 1u32 << (31 - u32::from(m));
    }
    format!("{bits:08x}")
}

/// `AccSupportFunList`: a string of 0/1, position 0 first.
pub fn acc_support_fun_list(positions: &[usize]) -> String {
    let len = positions.iter().copied().max().map_or(0, |m| m + 1).max(50);
    (0..len)
        .map(|i| if positions.contains(&i) { '1' } else { '0' })
        .collect()
}

/// The capability line, in the order of 7.4. `options` supplies the values
/// the server may have changed with SET OPTIONS (looked up by key).
pub fn capability_line(dev: &DeviceDescription, option: &dyn Fn(&str) -> Option<String>) -> String {
    let opt = |key: &str, default: &str| option(key).unwrap_or_else(|| default.to_owned());
    let mut kv = KeyValues::default();
    let mut add = |k: &str, v: String| kv.0.push((k.to_owned(), v));
    add("DeviceType", "acc".into());
    add("~DeviceName", dev.name.clone());
    add("FirmVer", dev.firmware_version.clone());
    add(
        "PushVersion",
        crate::protocol::DEVICE_PUSH_VERSION.to_string(),
    );
    if let Some(mac) = &dev.mac {
        add("MAC", mac.clone());
    }
    add("CommType", "ethernet".into());
    add("MaxPackageSize", dev.max_package_size.to_string());
    add("LockCount", dev.lock_count.to_string());
    add("ReaderCount", dev.reader_count.to_string());
    add("AuxInCount", dev.aux_in_count.to_string());
    add("AuxOutCount", dev.aux_out_count.to_string());
    add("MachineType", "101".into());
    add("~IsOnlyRFMachine", "1".into());
    add("~MaxUserCount", "100000".into());
    // Beyond it the oldest uploaded events are pruned (Store::prune_event_log).
    add("~MaxAttLogCount", crate::store::EVENT_LOG_CAP.to_string());
    add("~MaxUserFingerCount", "0".into());
    add("MThreshold", "0".into());
    for key in ["IPAddress", "NetMask", "GATEIPAddress"] {
        if let Some(v) = option(key) {
            add(key, v);
        }
    }
    add("~ZKFPVersion", "0".into());
    add("~REXInputFunOn", "1".into());
    add("~CardFormatFunOn", "1".into());
    add("~SupAuthrizeFunOn", "1".into());
    add("~ReaderCFGFunOn", "1".into());
    add("~ReaderLinkageFunOn", "1".into());
    add("~RelayStateFunOn", "1".into());
    add(
        "~Ext485ReaderFunOn",
        if dev.rs485_readers { "1" } else { "0" }.into(),
    );
    add("~TimeAPBFunOn", "1".into());
    add("~CtlAllRelayFunOn", "1".into());
    add("~LossCardFunOn", "1".into());
    add("SimpleEventType", "1".into());
    add("VerifyStyles", verify_styles_bitmap(SUPPORTED_VERIFY_MODES));
    let mut events = SUPPORTED_EVENTS.to_vec();
    let mut functions = ACC_SUPPORT_FUNCTIONS.to_vec();
    if dev.rs485_readers {
        events.extend_from_slice(RS485_READER_EVENTS);
        functions.extend_from_slice(RS485_READER_FUNCTIONS);
    }
    add("EventTypes", event_types_bitmap(&events));
    add("DisableUserFunOn", "1".into());
    add("DeleteAndFunOn", "1".into());
    add("LogIDFunOn", "1".into());
    add("DateFmtFunOn", opt("DateFmtFunOn", "1"));
    add("DelAllLossCardFunOn", "1".into());
    add("AutoClearDay", opt("AutoClearDay", "0"));
    add("FirstDelayDay", "0".into());
    add("DelayDay", "0".into());
    add("StopAllVerify", opt("StopAllVerify", "0"));
    add("FvFunOn", "0".into());
    add("FaceFunOn", "0".into());
    add("FingerFunOn", "0".into());
    add("CameraOpen", "0".into());
    add("AccSupportFunList", acc_support_fun_list(&functions));
    add("AutoServerFunOn", opt("AutoServerFunOn", "0"));
    add("DelayOpenDoorFunOn", "0".into());
    add("UserOpenDoorDelayFunOn", "0".into());
    add("MultiCardInterTimeFunOn", "0".into());
    add("OutRelaySetFunOn", "1".into());
    add("MachineTZFunOn", "1".into());
    add("DSTFunOn", "1".into());
    add("CardSiteCodeFunOn", "1".into());
    add("MulCardUserFunOn", opt("MulCardUserFunOn", "1"));
    add("UserNameFunOn", "1".into());
    add("StringPinFunOn", "1".into());
    add("MaxLockCount", dev.lock_count.to_string());
    add("MaxZigbeeCount", "0".into());
    add("MaxMCUCardBits", "64".into());
    add("SupportReaderType", "1".into());
    add("CmdFormat", dev.cmd_format.to_string());
    add("MultiStageControlFunOn", "0".into());
    add("MasterControlOn", "0".into());
    add("SubControlOn", "0".into());
    add("BioPhotoFun", "0".into());
    add("BioDataFun", "0".into());
    add("UserPicURLFunOn", "1".into());
    // What the device supports, not the negotiated result the server's
    // MultiBio*Support reply leaves in the options (6.1).
    add(
        "MultiBioDataSupport",
        crate::commands::data::bio::DEVICE_MULTI_BIO_DATA_SUPPORT.into(),
    );
    add(
        "MultiBioPhotoSupport",
        crate::commands::data::bio::DEVICE_MULTI_BIO_PHOTO_SUPPORT.into(),
    );
    add("MultiBioVersion", "0:0:0:0:0:0:0:0:0:0".into());
    add("MaxMultiBioDataCount", "0:0:0:0:0:0:0:0:0:0".into());
    add("MaxMultiBioPhotoCount", "0:0:0:0:0:0:0:0:0:0".into());
    add("SubcontractingUpgradeFunOn", "1".into());
    add("NewVFStyles", "0000101000000000".into());
    kv.to_comma_line()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_follow_the_spec_bit_order() {
        // Events 0-5 and 7 set, 6 clear: byte 0 is BF as in 7.4's example.
        let bitmap = event_types_bitmap(&[0, 1, 2, 3, 4, 5, 7]);
        assert_eq!(&bitmap[..2], "BF");
        assert_eq!(bitmap.len(), 64);
        assert_eq!(&event_types_bitmap(&[255])[62..], "80");
    }

    #[test]
    fn verify_styles_follow_appendix_3() {
        // FB = 11111011: positions 0-4, 6, 7 set, 5 clear.
        assert_eq!(&verify_styles_bitmap(&[0, 1, 2, 3, 4, 6, 7])[..2], "fb");
        assert_eq!(verify_styles_bitmap(&[]), "00000000");
    }

    #[test]
    fn capability_line_carries_board_counts_and_options() {
        let dev = DeviceDescription {
            name: "lintel".into(),
            firmware_version: "0.1.0".into(),
            mac: None,
            lock_count: 4,
            reader_count: 4,
            aux_in_count: 4,
            aux_out_count: 4,
            max_package_size: 2048000,
            cmd_format: 1,
            rs485_readers: false,
        };
        let line = capability_line(&dev, &|k| (k == "DateFmtFunOn").then(|| "0".to_owned()));
        let kv = KeyValues::parse_comma(&line);
        assert_eq!(kv.0[0], ("DeviceType".into(), "acc".into()));
        assert_eq!(kv.get("LockCount"), Some("4"));
        assert_eq!(kv.get("CmdFormat"), Some("1"));
        assert_eq!(kv.get("DateFmtFunOn"), Some("0"));
        assert_eq!(kv.get("AccSupportFunList").map(|s| &s[..4]), Some("1011"));
        assert!(!line.contains('\n'));
        assert_eq!(kv.get("~Ext485ReaderFunOn"), Some("0"));
    }

    #[test]
    fn rs485_support_is_announced_only_for_boards_with_such_readers() {
        let mut dev = DeviceDescription {
            name: "lintel".into(),
            firmware_version: "0.1.0".into(),
            mac: None,
            lock_count: 1,
            reader_count: 2,
            aux_in_count: 0,
            aux_out_count: 0,
            max_package_size: 2048000,
            cmd_format: 0,
            rs485_readers: false,
        };
        let has_event = |line: &str, e: u8| {
            let kv = KeyValues::parse_comma(line);
            let hex = kv.get("EventTypes").unwrap().to_owned();
            let byte = u8::from_str_radix(&hex[usize::from(e / 8) * 2..][..2], 16).unwrap();
            byte & (1 << (e % 8)) != 0
        };
        let plain = capability_line(&dev, &|_| None);
        dev.rs485_readers = true;
        let rs485 = capability_line(&dev, &|_| None);
        let (p, r) = (
            KeyValues::parse_comma(&plain),
            KeyValues::parse_comma(&rs485),
        );
        assert_eq!(p.get("~Ext485ReaderFunOn"), Some("0"));
        assert_eq!(r.get("~Ext485ReaderFunOn"), Some("1"));
        let bit = |kv: &KeyValues, i: usize| kv.get("AccSupportFunList").unwrap().as_bytes()[i];
        assert_eq!((bit(&p, 1), bit(&p, 32)), (b'0', b'0'));
        assert_eq!((bit(&r, 1), bit(&r, 32), bit(&r, 13)), (b'1', b'1', b'0'));
        for e in [109, 110, 236, 237] {
            assert!(!has_event(&plain, e) && has_event(&rs485, e), "event {e}");
        }
        assert!(has_event(&plain, 100) && has_event(&rs485, 100));
    }
}
