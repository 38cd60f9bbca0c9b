//! The static description of every table the DATA commands reach (12.1):
//! the spec's table and field names, the SQL identifiers they map to, how
//! each value is checked and normalised, the key an UPDATE replaces by, the
//! conditions a DELETE accepts, and the record format QUERY and the device's
//! uploads write.
//!
//! SQL text is generated only from these constants (design invariant 5):
//! a name from the server is matched against them and never copied into SQL.

/// How a field's value is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A decimal integer; empty is stored as NULL.
    Int,
    /// Free text (bounded length).
    Text,
    /// A card number: decimal or `[15CD5B07]` (bytes, little end first);
    /// stored as decimal text, `0` and empty meaning "no card".
    Card,
    /// A user validity bound (`0`, YYYYMMDD or Appendix 5 seconds, chosen by
    /// DateFmtFunOn). The raw value goes to the field's column, the
    /// normalised local time to `at`; `end` makes a bare date mean its last second.
    ValidDate { at: &'static str, end: bool },
    /// `YYYYMMDD`.
    Date8,
    /// A time-zone interval `start<<16 | end`, both HHMM.
    Interval,
    /// Base64 data.
    Base64,
    /// An event-log time: `YYYY-MM-DD HH:MM:SS` or Appendix 5 seconds;
    /// stored as the text form.
    RecordTime,
}

/// One field of a spec table.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The spelling of the spec's DATA UPDATE format.
    pub name: &'static str,
    /// Other spellings servers and the spec's examples use.
    pub aliases: &'static [&'static str],
    pub column: &'static str,
    pub kind: Kind,
}

impl Field {
    pub fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

const fn f(name: &'static str, column: &'static str, kind: Kind) -> Field {
    Field {
        name,
        aliases: &[],
        column,
        kind,
    }
}

const fn fa(
    name: &'static str,
    aliases: &'static [&'static str],
    column: &'static str,
    kind: Kind,
) -> Field {
    Field {
        name,
        aliases,
        column,
        kind,
    }
}

/// One field of an output record (QUERY answers and device uploads).
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// A column as stored; NULL is written empty.
    Col(&'static str, &'static str),
    /// A fixed value the device has no data for.
    Const(&'static str, &'static str),
    /// The length of a stored (base64) text column.
    Len(&'static str, &'static str),
    /// `<column>.jpg` (photo file names are the user's PIN).
    FileName(&'static str, &'static str),
    /// Appendix 5 seconds of a `YYYY-MM-DD HH:MM:SS` column.
    OldTime(&'static str, &'static str),
    /// 10.7: a duress finger (valid=3) is uploaded as finger ID + 16...
    DuressFinger(&'static str, &'static str, &'static str),
    /// ...with valid=1.
    DuressValid(&'static str, &'static str),
}

/// A condition field that compares by range rather than equality.
#[derive(Debug, Clone, Copy)]
pub struct RangeField {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: Kind,
    /// true: column >= value; false: column <= value.
    pub at_least: bool,
}

/// Fetching a photo by URL instead of inline base64 (Format=1).
#[derive(Debug, Clone, Copy)]
pub struct UrlFetch {
    pub format: &'static str,
    pub url: &'static str,
    pub content: &'static str,
    pub size: &'static str,
}

/// The panel's value for a key field an UPDATE record leaves out (or
/// empty), where the panel has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// Every door of this device, as 12.1.1.5's door bit mask: servers
    /// written for one-door terminals send no `AuthorizeDoorId`.
    AllDoors,
}

/// One table of the spec.
#[derive(Debug)]
pub struct Table {
    /// The spec's name, as written back in QUERY/COUNT answers.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub sql: &'static str,
    pub fields: &'static [Field],
    /// Spec field names forming the key an UPDATE inserts or replaces by.
    pub key: &'static [&'static str],
    /// Key fields an UPDATE must carry with a non-empty value.
    pub required: &'static [&'static str],
    /// Key fields an UPDATE may leave out: the value they get then.
    pub key_defaults: &'static [(&'static str, KeyDefault)],
    /// Spec field names a DELETE may name besides the key fields.
    pub delete_by: &'static [&'static str],
    /// Range conditions for COUNT/QUERY filters.
    pub ranges: &'static [RangeField],
    /// QUERY/upload record fields; empty means every field under its spec name.
    pub output: &'static [Out],
    /// Whether DATA UPDATE may write it (the event and error logs are the device's).
    pub writable: bool,
    /// `(size field, content field)`: the size must equal the base64 length.
    pub size_check: Option<(&'static str, &'static str)>,
    pub url_fetch: Option<UrlFetch>,
}

impl Table {
    pub fn field(&self, name: &str) -> Option<(usize, &'static Field)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.matches(name))
    }

    pub fn is_key(&self, field: &Field) -> bool {
        self.key.contains(&field.name)
    }

    /// Output fields, derived from the fields when none are listed.
    pub fn output_fields(&self) -> Vec<Out> {
        if self.output.is_empty() {
            self.fields
                .iter()
                .map(|f| Out::Col(f.name, f.column))
                .collect()
        } else {
            self.output.to_vec()
        }
    }
}

/// Looks up a table by the name a command gives (case-insensitive).
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| {
        t.name.eq_ignore_ascii_case(name) || t.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

const NO_RANGES: &[RangeField] = &[];

const fn plain(
    name: &'static str,
    sql: &'static str,
    fields: &'static [Field],
    key: &'static [&'static str],
    delete_by: &'static [&'static str],
) -> Table {
    Table {
        name,
        aliases: &[],
        sql,
        fields,
        key,
        required: key,
        key_defaults: &[],
        delete_by,
        ranges: NO_RANGES,
        output: &[],
        writable: true,
        size_check: None,
        url_fetch: None,
    }
}

// Aliases seen on deployed servers whose meaning is certain: `Card` is how
// 12.1.1.1's own note writes CardNo (`Card=[15CD5B07]`); `Passwd`, `Grp` and
// `Pri` are the user table of ZKTeco's attendance PUSH protocol, the same
// fields with the same values (Pri uses 12.1.1.1's privilege codes). Other
// names (`CardID`, `TZ`, `ExpiredTime`) are ignored: see lenient.rs.
const USER_FIELDS: &[Field] = &[
    fa("CardNo", &["Card"], "cardno", Kind::Card),
    f("Pin", "pin", Kind::Text),
    fa("Password", &["Passwd"], "password", Kind::Text),
    fa("Group", &["Grp"], "grp", Kind::Int),
    f(
        "StartTime",
        "start_raw",
        Kind::ValidDate {
            at: "start_at",
            end: false,
        },
    ),
    f(
        "EndTime",
        "end_raw",
        Kind::ValidDate {
            at: "end_at",
            end: true,
        },
    ),
    f("Name", "name", Kind::Text),
    fa("Privilege", &["Pri"], "privilege", Kind::Int),
    // Not in 12.1.1.1's list but in the user record (10.5) and sent by servers.
    f("Disable", "disable", Kind::Int),
    f("Verify", "verify", Kind::Int),
    // The user table of ZKTeco's C3/inBio panels, sent by their servers:
    // 1 makes the user a super user on every door (engine/rules.rs).
    f("SuperAuthorize", "super_authorize", Kind::Int),
];

/// 10.5's user record.
const USER_OUT: &[Out] = &[
    Out::Col("uid", "uid"),
    Out::Col("cardno", "cardno"),
    Out::Col("pin", "pin"),
    Out::Col("password", "password"),
    Out::Col("group", "grp"),
    Out::Col("starttime", "start_raw"),
    Out::Col("endtime", "end_raw"),
    Out::Col("name", "name"),
    Out::Col("privilege", "privilege"),
    Out::Col("disable", "disable"),
    Out::Col("verify", "verify"),
];

const EXTUSER_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    f("FunSwitch", "fun_switch", Kind::Int),
    f("FirstName", "first_name", Kind::Text),
    f("LastName", "last_name", Kind::Text),
    f("PersonalVS", "personal_vs", Kind::Int),
];

const MULCARDUSER_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    // A hexadecimal string kept as delivered (12.1.1.3), not a Card number.
    f("CardNo", "cardno", Kind::Text),
    f("LossCardFlag", "loss_card_flag", Kind::Int),
    f("CardType", "card_type", Kind::Int),
];

// The spec's example drops the underscores (`IDNum`, `ValidInfo`): aliases.
const IDENTITYCARD_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    fa("SN_Num", &["SNNum"], "sn_num", Kind::Text),
    fa("ID_Num", &["IDNum"], "id_num", Kind::Text),
    fa("DN_Num", &["DNNum", "DNum"], "dn_num", Kind::Text),
    f("Name", "name", Kind::Text),
    f("Gender", "gender", Kind::Int),
    f("Nation", "nation", Kind::Int),
    f("Birthday", "birthday", Kind::Text),
    fa("Valid_Info", &["ValidInfo"], "valid_info", Kind::Text),
    f("Address", "address", Kind::Text),
    fa(
        "Additional_Info",
        &["AdditionalInfo"],
        "additional_info",
        Kind::Text,
    ),
    f("Issuer", "issuer", Kind::Text),
    f("Photo", "photo", Kind::Base64),
    f("PhotoJPG", "photo_jpg", Kind::Base64),
    fa(
        "FP_Template1",
        &["FPTemplate1"],
        "fp_template1",
        Kind::Base64,
    ),
    fa(
        "FP_Template2",
        &["FPTemplate2"],
        "fp_template2",
        Kind::Base64,
    ),
    f("Reserve", "reserve", Kind::Text),
    f("Notice", "notice", Kind::Text),
];

/// 10.6's record: the same fields with `pin` written in lower case.
const IDENTITYCARD_OUT: &[Out] = &[
    Out::Col("pin", "pin"),
    Out::Col("SN_Num", "sn_num"),
    Out::Col("ID_Num", "id_num"),
    Out::Col("DN_Num", "dn_num"),
    Out::Col("Name", "name"),
    Out::Col("Gender", "gender"),
    Out::Col("Nation", "nation"),
    Out::Col("Birthday", "birthday"),
    Out::Col("Valid_Info", "valid_info"),
    Out::Col("Address", "address"),
    Out::Col("Additional_Info", "additional_info"),
    Out::Col("Issuer", "issuer"),
    Out::Col("Photo", "photo"),
    Out::Col("PhotoJPG", "photo_jpg"),
    Out::Col("FP_Template1", "fp_template1"),
    Out::Col("FP_Template2", "fp_template2"),
    Out::Col("Reserve", "reserve"),
    Out::Col("Notice", "notice"),
];

const USERAUTHORIZE_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    f("AuthorizeTimezoneId", "timezone_id", Kind::Int),
    f("AuthorizeDoorId", "door_mask", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const HOLIDAY_FIELDS: &[Field] = &[
    f("Holiday", "holiday", Kind::Date8),
    f("HolidayType", "holiday_type", Kind::Int),
    f("Loop", "loop", Kind::Int),
];

// `Timezoneld` (lower-case L) is the spec's own typo for TimezoneId.
const TIMEZONE_FIELDS: &[Field] = &[
    fa(
        "TimezoneId",
        &["Timezoneld", "TimezoneID"],
        "timezone_id",
        Kind::Int,
    ),
    f("SunTime1", "sun_time1", Kind::Interval),
    f("SunTime2", "sun_time2", Kind::Interval),
    f("SunTime3", "sun_time3", Kind::Interval),
    f("MonTime1", "mon_time1", Kind::Interval),
    f("MonTime2", "mon_time2", Kind::Interval),
    f("MonTime3", "mon_time3", Kind::Interval),
    f("TueTime1", "tue_time1", Kind::Interval),
    f("TueTime2", "tue_time2", Kind::Interval),
    f("TueTime3", "tue_time3", Kind::Interval),
    f("WedTime1", "wed_time1", Kind::Interval),
    f("WedTime2", "wed_time2", Kind::Interval),
    f("WedTime3", "wed_time3", Kind::Interval),
    f("ThuTime1", "thu_time1", Kind::Interval),
    f("ThuTime2", "thu_time2", Kind::Interval),
    f("ThuTime3", "thu_time3", Kind::Interval),
    f("FriTime1", "fri_time1", Kind::Interval),
    f("FriTime2", "fri_time2", Kind::Interval),
    f("FriTime3", "fri_time3", Kind::Interval),
    f("SatTime1", "sat_time1", Kind::Interval),
    f("SatTime2", "sat_time2", Kind::Interval),
    f("SatTime3", "sat_time3", Kind::Interval),
    f("Hol1Time1", "hol1_time1", Kind::Interval),
    f("Hol1Time2", "hol1_time2", Kind::Interval),
    f("Hol1Time3", "hol1_time3", Kind::Interval),
    f("Hol2Time1", "hol2_time1", Kind::Interval),
    f("Hol2Time2", "hol2_time2", Kind::Interval),
    f("Hol2Time3", "hol2_time3", Kind::Interval),
    f("Hol3Time1", "hol3_time1", Kind::Interval),
    f("Hol3Time2", "hol3_time2", Kind::Interval),
    f("Hol3Time3", "hol3_time3", Kind::Interval),
];

const TEMPLATEV10_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    f("FingerID", "finger_id", Kind::Int),
    f("Valid", "valid", Kind::Int),
    f("Template", "template", Kind::Base64),
];

/// 10.7's record.
const TEMPLATEV10_OUT: &[Out] = &[
    Out::Len("size", "template"),
    Out::Col("uid", "uid"),
    Out::Col("pin", "pin"),
    Out::DuressFinger("fingerid", "finger_id", "valid"),
    Out::DuressValid("valid", "valid"),
    Out::Col("template", "template"),
    Out::Const("resverd", ""),
    Out::Const("endtag", ""),
];

const FIRSTCARD_FIELDS: &[Field] = &[
    f("DoorID", "door_id", Kind::Int),
    f("TimezoneID", "timezone_id", Kind::Int),
    f("Pin", "pin", Kind::Text),
    f("DevID", "dev_id", Kind::Int),
];

const MULTIMCARD_FIELDS: &[Field] = &[
    f("Index", "idx", Kind::Int),
    f("DoorId", "door_id", Kind::Int),
    f("Group1", "group1", Kind::Int),
    f("Group2", "group2", Kind::Int),
    f("Group3", "group3", Kind::Int),
    f("Group4", "group4", Kind::Int),
    f("Group5", "group5", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const INOUTFUN_FIELDS: &[Field] = &[
    f("Index", "idx", Kind::Int),
    f("EventType", "event_type", Kind::Int),
    f("InAddr", "in_addr", Kind::Int),
    f("OutType", "out_type", Kind::Int),
    f("OutAddr", "out_addr", Kind::Int),
    f("OutTime", "out_time", Kind::Int),
    f("Reserved", "reserved", Kind::Int),
    f("InDevID", "in_dev_id", Kind::Int),
    f("OutDevID", "out_dev_id", Kind::Int),
];

const OUTRELAYSETTING_FIELDS: &[Field] = &[
    f("Num", "num", Kind::Int),
    f("OutType", "out_type", Kind::Int),
    f("ActionType", "action_type", Kind::Int),
    f("TimezoneId", "timezone_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const DSTSETTING_FIELDS: &[Field] = &[
    f("Year", "year", Kind::Int),
    f("StartTime", "start_time", Kind::Text),
    f("EndTime", "end_time", Kind::Text),
    f("Loop", "loop", Kind::Int),
];

const DEVPROPERTY_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("Type", "type", Kind::Int),
    f("BusType", "bus_type", Kind::Int),
    f("MachineType", "machine_type", Kind::Int),
    f("Address", "address", Kind::Int),
    f("Mac", "mac", Kind::Text),
    f("IPAddress", "ip_address", Kind::Text),
    f("SN", "sn", Kind::Text),
    f("IsMaster", "is_master", Kind::Int),
];

const DEVPARAMETERS_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("Name", "name", Kind::Text),
    f("Value", "value", Kind::Text),
];

const DOORPROPERTY_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
    f("Address", "address", Kind::Int),
    f("Disable", "disable", Kind::Int),
];

const DOORPARAMETERS_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("Name", "name", Kind::Text),
    f("Value", "value", Kind::Text),
    f("DevID", "dev_id", Kind::Int),
];

const READERPROPERTY_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("DoorID", "door_id", Kind::Int),
    f("Type", "type", Kind::Int),
    f("Address", "address", Kind::Int),
    f("IPAddress", "ip_address", Kind::Text),
    f("Port", "port", Kind::Int),
    f("MAC", "mac", Kind::Text),
    f("InOut", "in_out", Kind::Int),
    f("Disable", "disable", Kind::Int),
    f("VerifyType", "verify_type", Kind::Int),
    f("Multicast", "multicast", Kind::Text),
    f("DevID", "dev_id", Kind::Int),
    f("OfflineRefuse", "offline_refuse", Kind::Int),
];

const READERPARAMETERS_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
    f("Name", "name", Kind::Text),
    f("Value", "value", Kind::Text),
];

const AUX_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
    f("Address", "address", Kind::Int),
    f("Disable", "disable", Kind::Int),
];

const WGFORMAT_FIELDS: &[Field] = &[
    f("ID", "id", Kind::Int),
    f("CardBit", "card_bit", Kind::Int),
    f("SiteCode", "site_code", Kind::Int),
    f("FormatName", "format_name", Kind::Text),
    f("CardFormat", "card_format", Kind::Text),
];

const READERWGFORMAT_FIELDS: &[Field] = &[
    f("ReaderID", "reader_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
    f("WGFormatID", "wg_format_id", Kind::Int),
    f("ParityVerifyDisable", "parity_verify_disable", Kind::Int),
    f("ReversalType", "reversal_type", Kind::Int),
];

// `TimeZoneld` is the spec's typo for TimeZoneId.
const INPUTIOSETTING_FIELDS: &[Field] = &[
    f("Number", "number", Kind::Int),
    f("InType", "in_type", Kind::Int),
    fa("TimeZoneId", &["TimeZoneld"], "timezone_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const DIFFTIMEZONEVS_FIELDS: &[Field] = &[
    fa("TimezoneID", &["Timezoneld"], "timezone_id", Kind::Int),
    f("SunTime1", "sun_time1", Kind::Interval),
    f("SunTime1VSUser", "sun_time1_vs_user", Kind::Int),
    f("SunTime1VSDoor", "sun_time1_vs_door", Kind::Int),
    f("SunTime2", "sun_time2", Kind::Interval),
    f("SunTime2VSUser", "sun_time2_vs_user", Kind::Int),
    f("SunTime2VSDoor", "sun_time2_vs_door", Kind::Int),
    f("SunTime3", "sun_time3", Kind::Interval),
    f("SunTime3VSUser", "sun_time3_vs_user", Kind::Int),
    f("SunTime3VSDoor", "sun_time3_vs_door", Kind::Int),
    f("MonTime1", "mon_time1", Kind::Interval),
    f("MonTime1VSUser", "mon_time1_vs_user", Kind::Int),
    f("MonTime1VSDoor", "mon_time1_vs_door", Kind::Int),
    f("MonTime2", "mon_time2", Kind::Interval),
    f("MonTime2VSUser", "mon_time2_vs_user", Kind::Int),
    f("MonTime2VSDoor", "mon_time2_vs_door", Kind::Int),
    f("MonTime3", "mon_time3", Kind::Interval),
    f("MonTime3VSUser", "mon_time3_vs_user", Kind::Int),
    f("MonTime3VSDoor", "mon_time3_vs_door", Kind::Int),
    f("TueTime1", "tue_time1", Kind::Interval),
    f("TueTime1VSUser", "tue_time1_vs_user", Kind::Int),
    f("TueTime1VSDoor", "tue_time1_vs_door", Kind::Int),
    f("TueTime2", "tue_time2", Kind::Interval),
    f("TueTime2VSUser", "tue_time2_vs_user", Kind::Int),
    f("TueTime2VSDoor", "tue_time2_vs_door", Kind::Int),
    f("TueTime3", "tue_time3", Kind::Interval),
    f("TueTime3VSUser", "tue_time3_vs_user", Kind::Int),
    f("TueTime3VSDoor", "tue_time3_vs_door", Kind::Int),
    f("WedTime1", "wed_time1", Kind::Interval),
    f("WedTime1VSUser", "wed_time1_vs_user", Kind::Int),
    f("WedTime1VSDoor", "wed_time1_vs_door", Kind::Int),
    f("WedTime2", "wed_time2", Kind::Interval),
    f("WedTime2VSUser", "wed_time2_vs_user", Kind::Int),
    f("WedTime2VSDoor", "wed_time2_vs_door", Kind::Int),
    f("WedTime3", "wed_time3", Kind::Interval),
    f("WedTime3VSUser", "wed_time3_vs_user", Kind::Int),
    f("WedTime3VSDoor", "wed_time3_vs_door", Kind::Int),
    f("ThuTime1", "thu_time1", Kind::Interval),
    f("ThuTime1VSUser", "thu_time1_vs_user", Kind::Int),
    f("ThuTime1VSDoor", "thu_time1_vs_door", Kind::Int),
    f("ThuTime2", "thu_time2", Kind::Interval),
    f("ThuTime2VSUser", "thu_time2_vs_user", Kind::Int),
    f("ThuTime2VSDoor", "thu_time2_vs_door", Kind::Int),
    f("ThuTime3", "thu_time3", Kind::Interval),
    f("ThuTime3VSUser", "thu_time3_vs_user", Kind::Int),
    f("ThuTime3VSDoor", "thu_time3_vs_door", Kind::Int),
    f("FriTime1", "fri_time1", Kind::Interval),
    f("FriTime1VSUser", "fri_time1_vs_user", Kind::Int),
    f("FriTime1VSDoor", "fri_time1_vs_door", Kind::Int),
    f("FriTime2", "fri_time2", Kind::Interval),
    f("FriTime2VSUser", "fri_time2_vs_user", Kind::Int),
    f("FriTime2VSDoor", "fri_time2_vs_door", Kind::Int),
    f("FriTime3", "fri_time3", Kind::Interval),
    f("FriTime3VSUser", "fri_time3_vs_user", Kind::Int),
    f("FriTime3VSDoor", "fri_time3_vs_door", Kind::Int),
    f("SatTime1", "sat_time1", Kind::Interval),
    f("SatTime1VSUser", "sat_time1_vs_user", Kind::Int),
    f("SatTime1VSDoor", "sat_time1_vs_door", Kind::Int),
    f("SatTime2", "sat_time2", Kind::Interval),
    f("SatTime2VSUser", "sat_time2_vs_user", Kind::Int),
    f("SatTime2VSDoor", "sat_time2_vs_door", Kind::Int),
    f("SatTime3", "sat_time3", Kind::Interval),
    f("SatTime3VSUser", "sat_time3_vs_user", Kind::Int),
    f("SatTime3VSDoor", "sat_time3_vs_door", Kind::Int),
    f("Hol1Time1", "hol1_time1", Kind::Interval),
    f("Hol1Time1VSUser", "hol1_time1_vs_user", Kind::Int),
    f("Hol1Time1VSDoor", "hol1_time1_vs_door", Kind::Int),
    f("Hol1Time2", "hol1_time2", Kind::Interval),
    f("Hol1Time2VSUser", "hol1_time2_vs_user", Kind::Int),
    f("Hol1Time2VSDoor", "hol1_time2_vs_door", Kind::Int),
    f("Hol1Time3", "hol1_time3", Kind::Interval),
    f("Hol1Time3VSUser", "hol1_time3_vs_user", Kind::Int),
    f("Hol1Time3VSDoor", "hol1_time3_vs_door", Kind::Int),
    f("Hol2Time1", "hol2_time1", Kind::Interval),
    f("Hol2Time1VSUser", "hol2_time1_vs_user", Kind::Int),
    f("Hol2Time1VSDoor", "hol2_time1_vs_door", Kind::Int),
    f("Hol2Time2", "hol2_time2", Kind::Interval),
    f("Hol2Time2VSUser", "hol2_time2_vs_user", Kind::Int),
    f("Hol2Time2VSDoor", "hol2_time2_vs_door", Kind::Int),
    f("Hol2Time3", "hol2_time3", Kind::Interval),
    f("Hol2Time3VSUser", "hol2_time3_vs_user", Kind::Int),
    f("Hol2Time3VSDoor", "hol2_time3_vs_door", Kind::Int),
    f("Hol3Time1", "hol3_time1", Kind::Interval),
    f("Hol3Time1VSUser", "hol3_time1_vs_user", Kind::Int),
    f("Hol3Time1VSDoor", "hol3_time1_vs_door", Kind::Int),
    f("Hol3Time2", "hol3_time2", Kind::Interval),
    f("Hol3Time2VSUser", "hol3_time2_vs_user", Kind::Int),
    f("Hol3Time2VSDoor", "hol3_time2_vs_door", Kind::Int),
    f("Hol3Time3", "hol3_time3", Kind::Interval),
    f("Hol3Time3VSUser", "hol3_time3_vs_user", Kind::Int),
    f("Hol3Time3VSDoor", "hol3_time3_vs_door", Kind::Int),
];

const DOORVSTIMEZONE_FIELDS: &[Field] = &[
    f("DoorID", "door_id", Kind::Int),
    f("TimezoneID", "timezone_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const PERSONALVSTIMEZONE_FIELDS: &[Field] = &[
    f("PIN", "pin", Kind::Text),
    f("DoorID", "door_id", Kind::Int),
    f("TimezoneID", "timezone_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const SUPERAUTHORIZE_FIELDS: &[Field] = &[
    f("Pin", "pin", Kind::Text),
    f("DoorID", "door_id", Kind::Int),
    f("DevID", "dev_id", Kind::Int),
];

const BIOPHOTO_FIELDS: &[Field] = &[
    f("PIN", "pin", Kind::Text),
    f("Type", "type", Kind::Int),
    f("Size", "size", Kind::Int),
    f("Content", "content", Kind::Base64),
    f("Format", "format", Kind::Int),
    f("Url", "url", Kind::Text),
    f("PostBackTmpFlag", "post_back_tmp_flag", Kind::Int),
];

/// 10.8's record.
const BIOPHOTO_OUT: &[Out] = &[
    Out::Col("pin", "pin"),
    Out::FileName("filename", "pin"),
    Out::Col("type", "type"),
    Out::Len("size", "content"),
    Out::Col("content", "content"),
];

const USERPIC_FIELDS: &[Field] = &[
    f("pin", "pin", Kind::Text),
    f("size", "size", Kind::Int),
    f("format", "format", Kind::Int),
    f("url", "url", Kind::Text),
    f("content", "content", Kind::Base64),
];

/// 10.10's record.
const USERPIC_OUT: &[Out] = &[
    Out::Col("pin", "pin"),
    Out::FileName("filename", "pin"),
    Out::Len("size", "content"),
    Out::Col("content", "content"),
];

const BIODATA_FIELDS: &[Field] = &[
    f("pin", "pin", Kind::Text),
    f("no", "no", Kind::Int),
    f("index", "idx", Kind::Int),
    f("valid", "valid", Kind::Int),
    f("duress", "duress", Kind::Int),
    f("type", "type", Kind::Int),
    f("majorver", "majorver", Kind::Int),
    f("minorver", "minorver", Kind::Int),
    f("format", "format", Kind::Int),
    f("tmp", "tmp", Kind::Base64),
];

const ERRORLOG_FIELDS: &[Field] = &[
    f("errcode", "errcode", Kind::Text),
    f("errmsg", "errmsg", Kind::Text),
    f("dataorigin", "dataorigin", Kind::Text),
    f("cmdid", "cmdid", Kind::Text),
    f("additional", "additional", Kind::Text),
];

// `lsAuthorize` (lower-case L) is the spec's typo for IsAuthorize (section 8).
const DEVICEAUTHORIZE_FIELDS: &[Field] = &[
    f("SN", "sn", Kind::Text),
    f("Online", "online", Kind::Int),
    fa("IsAuthorize", &["lsAuthorize"], "is_authorize", Kind::Int),
    f("AuthorizeInfo", "authorize_info", Kind::Text),
    f("RegisterInfo", "register_info", Kind::Text),
];

/// The event log as conditions name it: the record's own field names plus
/// the spellings of the rtlog record (10.2).
const TRANSACTION_FIELDS: &[Field] = &[
    f("cardno", "cardno", Kind::Text),
    f("pin", "pin", Kind::Text),
    fa("verified", &["verifytype"], "verifytype", Kind::Text),
    fa("doorid", &["eventaddr"], "eventaddr", Kind::Int),
    fa("eventtype", &["event"], "event", Kind::Int),
    fa("inoutstate", &["inoutstatus"], "inoutstatus", Kind::Int),
    f("index", "idx", Kind::Int),
    f("sitecode", "sitecode", Kind::Text),
    f("time", "time", Kind::RecordTime),
];

/// 12.1.4.3's record. The text also lists maskflag, temperature and
/// convtemperature, which belong to devices with a thermal camera; its
/// example (and this controller) has none, so they are left out. `devid` is
/// this device itself: a stand-alone controller is device 1.
pub const TRANSACTION_OUT: &[Out] = &[
    Out::Col("cardno", "cardno"),
    Out::Col("pin", "pin"),
    Out::Col("verified", "verifytype"),
    Out::Col("doorid", "eventaddr"),
    Out::Col("eventtype", "event"),
    Out::Col("inoutstate", "inoutstatus"),
    Out::OldTime("time_second", "time"),
    Out::Col("index", "idx"),
    Out::Col("sitecode", "sitecode"),
    Out::Const("devid", "1"),
];

const TRANSACTION_RANGES: &[RangeField] = &[
    RangeField {
        name: "StartTime",
        column: "time",
        kind: Kind::RecordTime,
        at_least: true,
    },
    RangeField {
        name: "EndTime",
        column: "time",
        kind: Kind::RecordTime,
        at_least: false,
    },
];

pub const TRANSACTION: &str = "transaction";

/// Every table, in the spec's order.
pub static TABLES: &[Table] = &[
    Table {
        output: USER_OUT,
        ..plain("user", "users", USER_FIELDS, &["Pin"], &["CardNo"])
    },
    plain("extuser", "ext_users", EXTUSER_FIELDS, &["Pin"], &[]),
    // 12.1.2.3 spells it `multipcarduser` once.
    Table {
        aliases: &["multipcarduser"],
        ..plain(
            "mulcarduser",
            "multi_card_users",
            MULCARDUSER_FIELDS,
            &["Pin", "CardNo"],
            &[],
        )
    },
    Table {
        output: IDENTITYCARD_OUT,
        ..plain(
            "identitycard",
            "identity_cards",
            IDENTITYCARD_FIELDS,
            &["Pin"],
            &["SN_Num", "ID_Num"],
        )
    },
    // A permission without a door is for every door of this device. DevID
    // may be left out too (stored as 0): the engine applies every row to
    // this device whatever its DevID, as a stand-alone controller is one.
    Table {
        required: &["Pin", "AuthorizeTimezoneId"],
        key_defaults: &[("AuthorizeDoorId", KeyDefault::AllDoors)],
        ..plain(
            "userauthorize",
            "user_authorizations",
            USERAUTHORIZE_FIELDS,
            &["Pin", "AuthorizeTimezoneId", "AuthorizeDoorId", "DevID"],
            &[],
        )
    },
    plain("holiday", "holidays", HOLIDAY_FIELDS, &["Holiday"], &[]),
    plain(
        "timezone",
        "time_zones",
        TIMEZONE_FIELDS,
        &["TimezoneId"],
        &[],
    ),
    // 12.1.3.3 calls it `template10`.
    Table {
        aliases: &["template10"],
        output: TEMPLATEV10_OUT,
        ..plain(
            "templatev10",
            "fp_templates_v10",
            TEMPLATEV10_FIELDS,
            &["Pin", "FingerID"],
            &[],
        )
    },
    Table {
        required: &["DoorID", "Pin"],
        ..plain(
            "firstcard",
            "first_cards",
            FIRSTCARD_FIELDS,
            &["DoorID", "Pin", "TimezoneID", "DevID"],
            &[],
        )
    },
    plain(
        "multimcard",
        "multi_card_groups",
        MULTIMCARD_FIELDS,
        &["Index"],
        &[],
    ),
    plain("inoutfun", "linkages", INOUTFUN_FIELDS, &["Index"], &[]),
    Table {
        required: &["Num"],
        ..plain(
            "outrelaysetting",
            "scheduled_outputs",
            OUTRELAYSETTING_FIELDS,
            &["Num", "OutType"],
            &[],
        )
    },
    plain(
        "DSTSetting",
        "dst_settings",
        DSTSETTING_FIELDS,
        &["Year"],
        &[],
    ),
    plain(
        "DevProperty",
        "device_properties",
        DEVPROPERTY_FIELDS,
        &["ID"],
        &[],
    ),
    plain(
        "DevParameters",
        "device_parameters",
        DEVPARAMETERS_FIELDS,
        &["ID", "Name"],
        &[],
    ),
    plain(
        "DoorProperty",
        "door_properties",
        DOORPROPERTY_FIELDS,
        &["ID"],
        &[],
    ),
    plain(
        "DoorParameters",
        "door_parameters",
        DOORPARAMETERS_FIELDS,
        &["ID", "Name"],
        &[],
    ),
    plain(
        "ReaderProperty",
        "reader_properties",
        READERPROPERTY_FIELDS,
        &["ID"],
        &[],
    ),
    plain(
        "ReaderParameters",
        "reader_parameters",
        READERPARAMETERS_FIELDS,
        &["ID", "Name"],
        &[],
    ),
    plain("AuxIn", "aux_inputs", AUX_FIELDS, &["ID"], &[]),
    plain("AuxOut", "aux_outputs", AUX_FIELDS, &["ID"], &[]),
    plain(
        "DefaultWGFormat",
        "default_wiegand_formats",
        WGFORMAT_FIELDS,
        &["ID"],
        &["CardBit"],
    ),
    plain(
        "WGFormat",
        "wiegand_formats",
        WGFORMAT_FIELDS,
        &["ID"],
        &["CardBit"],
    ),
    Table {
        required: &["ReaderID"],
        ..plain(
            "ReaderWGFormat",
            "reader_wiegand_formats",
            READERWGFORMAT_FIELDS,
            &["ReaderID", "DevID"],
            &["DevID"],
        )
    },
    Table {
        required: &["Number"],
        ..plain(
            "InputIOSetting",
            "input_io_settings",
            INPUTIOSETTING_FIELDS,
            &["Number", "InType"],
            &[],
        )
    },
    plain(
        "DiffTimezoneVS",
        "verify_mode_time_zones",
        DIFFTIMEZONEVS_FIELDS,
        &["TimezoneID"],
        &[],
    ),
    Table {
        required: &["DoorID"],
        ..plain(
            "DoorVSTimezone",
            "door_verify_time_zones",
            DOORVSTIMEZONE_FIELDS,
            &["DoorID", "DevID"],
            &[],
        )
    },
    Table {
        required: &["PIN"],
        ..plain(
            "PersonalVSTimezone",
            "personal_verify_time_zones",
            PERSONALVSTIMEZONE_FIELDS,
            &["PIN", "DoorID", "DevID"],
            &[],
        )
    },
    Table {
        required: &["Pin"],
        ..plain(
            "SuperAuthorize",
            "super_authorizations",
            SUPERAUTHORIZE_FIELDS,
            &["Pin", "DoorID", "DevID"],
            &[],
        )
    },
    Table {
        output: BIOPHOTO_OUT,
        required: &["PIN"],
        size_check: Some(("Size", "Content")),
        url_fetch: Some(UrlFetch {
            format: "Format",
            url: "Url",
            content: "Content",
            size: "Size",
        }),
        ..plain(
            "biophoto",
            "bio_photos",
            BIOPHOTO_FIELDS,
            &["PIN", "Type"],
            &[],
        )
    },
    Table {
        output: USERPIC_OUT,
        size_check: Some(("size", "content")),
        url_fetch: Some(UrlFetch {
            format: "format",
            url: "url",
            content: "content",
            size: "size",
        }),
        ..plain("userpic", "user_photos", USERPIC_FIELDS, &["pin"], &[])
    },
    Table {
        required: &["pin"],
        ..plain(
            "biodata",
            "bio_templates",
            BIODATA_FIELDS,
            &["pin", "no", "index", "type"],
            &[],
        )
    },
    Table {
        writable: false,
        ..plain(
            "errorlog",
            "error_log",
            ERRORLOG_FIELDS,
            &[],
            &["errcode", "cmdid"],
        )
    },
    Table {
        writable: false,
        output: TRANSACTION_OUT,
        ranges: TRANSACTION_RANGES,
        ..plain(
            TRANSACTION,
            "event_log",
            TRANSACTION_FIELDS,
            &[],
            &["pin", "cardno", "index", "doorid", "eventtype"],
        )
    },
    plain(
        "DeviceAuthorize",
        "device_authorizations",
        DEVICEAUTHORIZE_FIELDS,
        &["SN"],
        &[],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn columns(store: &Store, table: &str) -> Vec<String> {
        let mut stmt = store
            .conn()
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(1)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn every_described_column_exists_in_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for t in TABLES {
            let cols = columns(&store, t.sql);
            assert!(!cols.is_empty(), "table {} missing", t.sql);
            let mut wanted: Vec<&str> = Vec::new();
            for f in t.fields {
                wanted.push(f.column);
                if let Kind::ValidDate { at, .. } = f.kind {
                    wanted.push(at);
                }
            }
            for o in t.output_fields() {
                match o {
                    Out::Col(_, c) | Out::Len(_, c) | Out::FileName(_, c) | Out::OldTime(_, c) => {
                        wanted.push(c)
                    }
                    Out::DuressFinger(_, a, b) => wanted.extend([a, b]),
                    Out::DuressValid(_, c) => wanted.push(c),
                    Out::Const(..) => {}
                }
            }
            for r in t.ranges {
                wanted.push(r.column);
            }
            for c in wanted {
                assert!(cols.iter().any(|x| x == c), "{}.{c} missing", t.sql);
            }
        }
    }

    #[test]
    fn names_resolve_case_insensitively_with_the_spec_typos() {
        assert_eq!(table("USER").unwrap().name, "user");
        assert_eq!(table("template10").unwrap().name, "templatev10");
        assert_eq!(table("multipcarduser").unwrap().name, "mulcarduser");
        assert!(table("users; DROP TABLE users").is_none());
        let tz = table("timezone").unwrap();
        assert_eq!(tz.field("Timezoneld").unwrap().1.column, "timezone_id");
        assert_eq!(tz.fields.len(), 31);
        assert_eq!(table("DiffTimezoneVS").unwrap().fields.len(), 91);
    }
}
