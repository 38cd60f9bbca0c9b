-- Core tables of the firmware: persisted options, the event log, the
-- outbox of pending uploads and the results of executed commands.

CREATE TABLE options (
    key   TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    value TEXT NOT NULL
);

-- The access-control event log (the spec's `transaction` table). `idx` is the
-- record's `index` on the wire: AUTOINCREMENT guarantees it is never reused,
-- even after rows are deleted.
CREATE TABLE event_log (
    idx         INTEGER PRIMARY KEY AUTOINCREMENT,
    time        TEXT    NOT NULL,
    pin         TEXT    NOT NULL DEFAULT '0',
    cardno      TEXT    NOT NULL DEFAULT '0',
    sitecode    TEXT    NOT NULL DEFAULT '0',
    linkid      INTEGER NOT NULL DEFAULT 0,
    eventaddr   INTEGER NOT NULL DEFAULT 0,
    event       INTEGER NOT NULL,
    inoutstatus INTEGER NOT NULL DEFAULT 0,
    verifytype  TEXT    NOT NULL DEFAULT '0'
);
CREATE INDEX event_log_time ON event_log(time);

-- Pending uploads, oldest first. `channel` says where a row goes
-- (`rtlog`, `rtstate`, `tabledata/<name>`, `options`); `body` is one record line.
CREATE TABLE outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body    TEXT NOT NULL
);

-- Results of executed commands, stored before they are reported so that a
-- command ID seen again is answered from here and not executed twice.
CREATE TABLE command_results (
    id          TEXT PRIMARY KEY NOT NULL,
    ret         INTEGER NOT NULL,
    cmd         TEXT NOT NULL,
    extra       TEXT NOT NULL DEFAULT '',
    reported    INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL
);
CREATE INDEX command_results_unreported ON command_results(reported, seq);
