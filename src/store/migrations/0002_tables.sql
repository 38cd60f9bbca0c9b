-- Tables of the server's DATA commands (spec 12.1), one per spec table.
-- The spec's `transaction` table is `event_log` (migration 1).
--
-- Conventions the access-control engine relies on:
--   * numbers the spec defines as numbers are INTEGER; an empty value in a
--     command (`Group3=`) is stored as NULL;
--   * card numbers (`users.cardno`) are normalised to decimal text, '' = no card;
--   * user validity: `start_raw`/`end_raw` keep the value as delivered
--     (`0`, YYYYMMDD or Appendix 5 seconds); `start_at`/`end_at` hold the same
--     instant as 'YYYY-MM-DD HH:MM:SS' local time, NULL = no limit (an
--     end date given as YYYYMMDD means the end of that day);
--   * time-zone intervals are the delivered integers `start<<16 | end`, each
--     half HHMM (see commands::data::value::decode_interval);
--   * base64 payloads are kept as the delivered base64 text.

CREATE TABLE users (
    uid        INTEGER PRIMARY KEY AUTOINCREMENT,
    pin        TEXT    NOT NULL UNIQUE,
    cardno     TEXT    NOT NULL DEFAULT '',
    password   TEXT    NOT NULL DEFAULT '',
    grp        INTEGER DEFAULT 1,
    start_raw  TEXT    NOT NULL DEFAULT '0',
    start_at   TEXT,
    end_raw    TEXT    NOT NULL DEFAULT '0',
    end_at     TEXT,
    name       TEXT    NOT NULL DEFAULT '',
    privilege  INTEGER DEFAULT 0,
    disable    INTEGER DEFAULT 0,
    verify     INTEGER DEFAULT 0
);
CREATE INDEX users_cardno ON users(cardno);

CREATE TABLE ext_users (
    pin         TEXT PRIMARY KEY NOT NULL,
    fun_switch  INTEGER DEFAULT 0,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    personal_vs INTEGER DEFAULT 0
);

CREATE TABLE multi_card_users (
    pin             TEXT NOT NULL,
    cardno          TEXT NOT NULL,
    loss_card_flag  INTEGER DEFAULT 0,
    card_type       INTEGER DEFAULT 0,
    UNIQUE (pin, cardno)
);
CREATE INDEX multi_card_users_cardno ON multi_card_users(cardno);

CREATE TABLE identity_cards (
    pin             TEXT PRIMARY KEY NOT NULL,
    sn_num          TEXT NOT NULL DEFAULT '',
    id_num          TEXT NOT NULL DEFAULT '',
    dn_num          TEXT NOT NULL DEFAULT '',
    name            TEXT NOT NULL DEFAULT '',
    gender          INTEGER,
    nation          INTEGER,
    birthday        TEXT NOT NULL DEFAULT '',
    valid_info      TEXT NOT NULL DEFAULT '',
    address         TEXT NOT NULL DEFAULT '',
    additional_info TEXT NOT NULL DEFAULT '',
    issuer          TEXT NOT NULL DEFAULT '',
    photo           TEXT NOT NULL DEFAULT '',
    photo_jpg       TEXT NOT NULL DEFAULT '',
    fp_template1    TEXT NOT NULL DEFAULT '',
    fp_template2    TEXT NOT NULL DEFAULT '',
    reserve         TEXT NOT NULL DEFAULT '',
    notice          TEXT NOT NULL DEFAULT ''
);

-- AuthorizeDoorId is a bit mask of doors (bit 0 = door 1).
CREATE TABLE user_authorizations (
    pin         TEXT    NOT NULL,
    timezone_id INTEGER NOT NULL,
    door_mask   INTEGER NOT NULL,
    dev_id      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pin, timezone_id, door_mask, dev_id)
);

-- `holiday` is YYYYMMDD; loop 1 = every year on that month and day.
CREATE TABLE holidays (
    holiday      TEXT PRIMARY KEY NOT NULL,
    holiday_type INTEGER,
    loop         INTEGER
);

CREATE TABLE time_zones (
    timezone_id INTEGER PRIMARY KEY NOT NULL,
    sun_time1 INTEGER NOT NULL DEFAULT 0,
    sun_time2 INTEGER NOT NULL DEFAULT 0,
    sun_time3 INTEGER NOT NULL DEFAULT 0,
    mon_time1 INTEGER NOT NULL DEFAULT 0,
    mon_time2 INTEGER NOT NULL DEFAULT 0,
    mon_time3 INTEGER NOT NULL DEFAULT 0,
    tue_time1 INTEGER NOT NULL DEFAULT 0,
    tue_time2 INTEGER NOT NULL DEFAULT 0,
    tue_time3 INTEGER NOT NULL DEFAULT 0,
    wed_time1 INTEGER NOT NULL DEFAULT 0,
    wed_time2 INTEGER NOT NULL DEFAULT 0,
    wed_time3 INTEGER NOT NULL DEFAULT 0,
    thu_time1 INTEGER NOT NULL DEFAULT 0,
    thu_time2 INTEGER NOT NULL DEFAULT 0,
    thu_time3 INTEGER NOT NULL DEFAULT 0,
    fri_time1 INTEGER NOT NULL DEFAULT 0,
    fri_time2 INTEGER NOT NULL DEFAULT 0,
    fri_time3 INTEGER NOT NULL DEFAULT 0,
    sat_time1 INTEGER NOT NULL DEFAULT 0,
    sat_time2 INTEGER NOT NULL DEFAULT 0,
    sat_time3 INTEGER NOT NULL DEFAULT 0,
    hol1_time1 INTEGER NOT NULL DEFAULT 0,
    hol1_time2 INTEGER NOT NULL DEFAULT 0,
    hol1_time3 INTEGER NOT NULL DEFAULT 0,
    hol2_time1 INTEGER NOT NULL DEFAULT 0,
    hol2_time2 INTEGER NOT NULL DEFAULT 0,
    hol2_time3 INTEGER NOT NULL DEFAULT 0,
    hol3_time1 INTEGER NOT NULL DEFAULT 0,
    hol3_time2 INTEGER NOT NULL DEFAULT 0,
    hol3_time3 INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE fp_templates_v10 (
    uid       INTEGER PRIMARY KEY AUTOINCREMENT,
    pin       TEXT    NOT NULL,
    finger_id INTEGER NOT NULL,
    valid     INTEGER DEFAULT 1,
    template  TEXT    NOT NULL DEFAULT '',
    UNIQUE (pin, finger_id)
);

CREATE TABLE first_cards (
    door_id     INTEGER NOT NULL,
    timezone_id INTEGER NOT NULL DEFAULT 0,
    pin         TEXT    NOT NULL,
    dev_id      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (door_id, pin, timezone_id, dev_id)
);

CREATE TABLE multi_card_groups (
    idx     INTEGER PRIMARY KEY NOT NULL,
    door_id INTEGER,
    group1  INTEGER,
    group2  INTEGER,
    group3  INTEGER,
    group4  INTEGER,
    group5  INTEGER,
    dev_id  INTEGER
);

CREATE TABLE linkages (
    idx        INTEGER PRIMARY KEY NOT NULL,
    event_type INTEGER,
    in_addr    INTEGER,
    out_type   INTEGER,
    out_addr   INTEGER,
    out_time   INTEGER,
    reserved   INTEGER,
    in_dev_id  INTEGER,
    out_dev_id INTEGER
);

CREATE TABLE scheduled_outputs (
    num         INTEGER NOT NULL,
    out_type    INTEGER NOT NULL DEFAULT 0,
    action_type INTEGER,
    timezone_id INTEGER,
    dev_id      INTEGER,
    UNIQUE (num, out_type)
);

-- start/end are MMIIWWHH (month, week, weekday, hour) as delivered.
CREATE TABLE dst_settings (
    year       INTEGER PRIMARY KEY NOT NULL,
    start_time TEXT NOT NULL DEFAULT '',
    end_time   TEXT NOT NULL DEFAULT '',
    loop       INTEGER
);

CREATE TABLE device_properties (
    id           INTEGER PRIMARY KEY NOT NULL,
    type         INTEGER,
    bus_type     INTEGER,
    machine_type INTEGER,
    address      INTEGER,
    mac          TEXT NOT NULL DEFAULT '',
    ip_address   TEXT NOT NULL DEFAULT '',
    sn           TEXT NOT NULL DEFAULT '',
    is_master    INTEGER
);

CREATE TABLE device_parameters (
    id    INTEGER NOT NULL,
    name  TEXT    NOT NULL,
    value TEXT    NOT NULL DEFAULT '',
    UNIQUE (id, name)
);

CREATE TABLE door_properties (
    id      INTEGER PRIMARY KEY NOT NULL,
    dev_id  INTEGER,
    address INTEGER,
    disable INTEGER
);

CREATE TABLE door_parameters (
    id     INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    value  TEXT    NOT NULL DEFAULT '',
    dev_id INTEGER,
    UNIQUE (id, name)
);

CREATE TABLE reader_properties (
    id             INTEGER PRIMARY KEY NOT NULL,
    door_id        INTEGER,
    type           INTEGER,
    address        INTEGER,
    ip_address     TEXT NOT NULL DEFAULT '',
    port           INTEGER,
    mac            TEXT NOT NULL DEFAULT '',
    in_out         INTEGER,
    disable        INTEGER,
    verify_type    INTEGER,
    multicast      TEXT NOT NULL DEFAULT '',
    dev_id         INTEGER,
    offline_refuse INTEGER
);

CREATE TABLE reader_parameters (
    id     INTEGER NOT NULL,
    dev_id INTEGER,
    name   TEXT    NOT NULL,
    value  TEXT    NOT NULL DEFAULT '',
    UNIQUE (id, name)
);

CREATE TABLE aux_inputs (
    id      INTEGER PRIMARY KEY NOT NULL,
    dev_id  INTEGER,
    address INTEGER,
    disable INTEGER
);

CREATE TABLE aux_outputs (
    id      INTEGER PRIMARY KEY NOT NULL,
    dev_id  INTEGER,
    address INTEGER,
    disable INTEGER
);

CREATE TABLE default_wiegand_formats (
    id          INTEGER PRIMARY KEY NOT NULL,
    card_bit    INTEGER,
    site_code   INTEGER,
    format_name TEXT NOT NULL DEFAULT '',
    card_format TEXT NOT NULL DEFAULT ''
);

CREATE TABLE wiegand_formats (
    id          INTEGER PRIMARY KEY NOT NULL,
    card_bit    INTEGER,
    site_code   INTEGER,
    format_name TEXT NOT NULL DEFAULT '',
    card_format TEXT NOT NULL DEFAULT ''
);

CREATE TABLE reader_wiegand_formats (
    reader_id             INTEGER NOT NULL,
    dev_id                INTEGER NOT NULL DEFAULT 0,
    wg_format_id          INTEGER,
    parity_verify_disable INTEGER,
    reversal_type         INTEGER,
    UNIQUE (reader_id, dev_id)
);

CREATE TABLE input_io_settings (
    number      INTEGER NOT NULL,
    in_type     INTEGER NOT NULL DEFAULT 0,
    timezone_id INTEGER,
    dev_id      INTEGER,
    UNIQUE (number, in_type)
);

CREATE TABLE verify_mode_time_zones (
    timezone_id INTEGER PRIMARY KEY NOT NULL,
    sun_time1 INTEGER NOT NULL DEFAULT 0,
    sun_time1_vs_user INTEGER,
    sun_time1_vs_door INTEGER,
    sun_time2 INTEGER NOT NULL DEFAULT 0,
    sun_time2_vs_user INTEGER,
    sun_time2_vs_door INTEGER,
    sun_time3 INTEGER NOT NULL DEFAULT 0,
    sun_time3_vs_user INTEGER,
    sun_time3_vs_door INTEGER,
    mon_time1 INTEGER NOT NULL DEFAULT 0,
    mon_time1_vs_user INTEGER,
    mon_time1_vs_door INTEGER,
    mon_time2 INTEGER NOT NULL DEFAULT 0,
    mon_time2_vs_user INTEGER,
    mon_time2_vs_door INTEGER,
    mon_time3 INTEGER NOT NULL DEFAULT 0,
    mon_time3_vs_user INTEGER,
    mon_time3_vs_door INTEGER,
    tue_time1 INTEGER NOT NULL DEFAULT 0,
    tue_time1_vs_user INTEGER,
    tue_time1_vs_door INTEGER,
    tue_time2 INTEGER NOT NULL DEFAULT 0,
    tue_time2_vs_user INTEGER,
    tue_time2_vs_door INTEGER,
    tue_time3 INTEGER NOT NULL DEFAULT 0,
    tue_time3_vs_user INTEGER,
    tue_time3_vs_door INTEGER,
    wed_time1 INTEGER NOT NULL DEFAULT 0,
    wed_time1_vs_user INTEGER,
    wed_time1_vs_door INTEGER,
    wed_time2 INTEGER NOT NULL DEFAULT 0,
    wed_time2_vs_user INTEGER,
    wed_time2_vs_door INTEGER,
    wed_time3 INTEGER NOT NULL DEFAULT 0,
    wed_time3_vs_user INTEGER,
    wed_time3_vs_door INTEGER,
    thu_time1 INTEGER NOT NULL DEFAULT 0,
    thu_time1_vs_user INTEGER,
    thu_time1_vs_door INTEGER,
    thu_time2 INTEGER NOT NULL DEFAULT 0,
    thu_time2_vs_user INTEGER,
    thu_time2_vs_door INTEGER,
    thu_time3 INTEGER NOT NULL DEFAULT 0,
    thu_time3_vs_user INTEGER,
    thu_time3_vs_door INTEGER,
    fri_time1 INTEGER NOT NULL DEFAULT 0,
    fri_time1_vs_user INTEGER,
    fri_time1_vs_door INTEGER,
    fri_time2 INTEGER NOT NULL DEFAULT 0,
    fri_time2_vs_user INTEGER,
    fri_time2_vs_door INTEGER,
    fri_time3 INTEGER NOT NULL DEFAULT 0,
    fri_time3_vs_user INTEGER,
    fri_time3_vs_door INTEGER,
    sat_time1 INTEGER NOT NULL DEFAULT 0,
    sat_time1_vs_user INTEGER,
    sat_time1_vs_door INTEGER,
    sat_time2 INTEGER NOT NULL DEFAULT 0,
    sat_time2_vs_user INTEGER,
    sat_time2_vs_door INTEGER,
    sat_time3 INTEGER NOT NULL DEFAULT 0,
    sat_time3_vs_user INTEGER,
    sat_time3_vs_door INTEGER,
    hol1_time1 INTEGER NOT NULL DEFAULT 0,
    hol1_time1_vs_user INTEGER,
    hol1_time1_vs_door INTEGER,
    hol1_time2 INTEGER NOT NULL DEFAULT 0,
    hol1_time2_vs_user INTEGER,
    hol1_time2_vs_door INTEGER,
    hol1_time3 INTEGER NOT NULL DEFAULT 0,
    hol1_time3_vs_user INTEGER,
    hol1_time3_vs_door INTEGER,
    hol2_time1 INTEGER NOT NULL DEFAULT 0,
    hol2_time1_vs_user INTEGER,
    hol2_time1_vs_door INTEGER,
    hol2_time2 INTEGER NOT NULL DEFAULT 0,
    hol2_time2_vs_user INTEGER,
    hol2_time2_vs_door INTEGER,
    hol2_time3 INTEGER NOT NULL DEFAULT 0,
    hol2_time3_vs_user INTEGER,
    hol2_time3_vs_door INTEGER,
    hol3_time1 INTEGER NOT NULL DEFAULT 0,
    hol3_time1_vs_user INTEGER,
    hol3_time1_vs_door INTEGER,
    hol3_time2 INTEGER NOT NULL DEFAULT 0,
    hol3_time2_vs_user INTEGER,
    hol3_time2_vs_door INTEGER,
    hol3_time3 INTEGER NOT NULL DEFAULT 0,
    hol3_time3_vs_user INTEGER,
    hol3_time3_vs_door INTEGER
);

CREATE TABLE door_verify_time_zones (
    door_id     INTEGER NOT NULL,
    timezone_id INTEGER,
    dev_id      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (door_id, dev_id)
);

CREATE TABLE personal_verify_time_zones (
    pin         TEXT    NOT NULL,
    door_id     INTEGER NOT NULL DEFAULT 0,
    timezone_id INTEGER,
    dev_id      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pin, door_id, dev_id)
);

CREATE TABLE super_authorizations (
    pin     TEXT    NOT NULL,
    door_id INTEGER NOT NULL DEFAULT 0,
    dev_id  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pin, door_id, dev_id)
);

-- Biometric comparison photos (12.1.1.30); `type` per Appendix 18.
CREATE TABLE bio_photos (
    pin                 TEXT    NOT NULL,
    type                INTEGER NOT NULL DEFAULT 9,
    size                INTEGER,
    content             TEXT    NOT NULL DEFAULT '',
    format              INTEGER,
    url                 TEXT    NOT NULL DEFAULT '',
    post_back_tmp_flag  INTEGER,
    UNIQUE (pin, type)
);

CREATE TABLE user_photos (
    pin     TEXT PRIMARY KEY NOT NULL,
    size    INTEGER,
    format  INTEGER,
    url     TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT ''
);

-- Unified biometric templates (12.1.1.32).
CREATE TABLE bio_templates (
    pin      TEXT    NOT NULL,
    no       INTEGER NOT NULL DEFAULT 0,
    idx      INTEGER NOT NULL DEFAULT 0,
    valid    INTEGER DEFAULT 1,
    duress   INTEGER DEFAULT 0,
    type     INTEGER NOT NULL DEFAULT 9,
    majorver INTEGER,
    minorver INTEGER,
    format   INTEGER,
    tmp      TEXT    NOT NULL DEFAULT '',
    UNIQUE (pin, no, idx, type)
);

-- Device error log (10.12, Appendix 17). Written by the firmware only.
CREATE TABLE error_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    errcode    TEXT NOT NULL,
    errmsg     TEXT NOT NULL DEFAULT '',
    dataorigin TEXT NOT NULL DEFAULT 'dev',
    cmdid      TEXT NOT NULL DEFAULT '',
    additional TEXT NOT NULL DEFAULT '',
    logged_at  TEXT NOT NULL DEFAULT ''
);

-- Secondary controllers' authorisation (section 8).
CREATE TABLE device_authorizations (
    sn             TEXT PRIMARY KEY NOT NULL,
    online         INTEGER,
    is_authorize   INTEGER,
    authorize_info TEXT NOT NULL DEFAULT '',
    register_info  TEXT NOT NULL DEFAULT ''
);
