-- Device-wide anti-passback (option AntiPassback, Appendix 8): the side of
-- each zone a user last passed, written when a grant is made.
-- zone: 1-6 door-level zones (the Appendix 8 value that defines it; 3 is
-- zones 1 and 2), 11-14 the in/out readers of doors 1-4; side 0 or 1.
CREATE TABLE engine_apb_zones (
    pin  TEXT    NOT NULL,
    zone INTEGER NOT NULL,
    side INTEGER NOT NULL,
    at   TEXT    NOT NULL,
    PRIMARY KEY (pin, zone)
) WITHOUT ROWID;
