-- State of the access-control engine that must survive a restart.

-- Anti-passback: the last passage of each user at each door (direction
-- 0 = in, 1 = out, as rtlog's inoutstatus), written when a grant is made.
CREATE TABLE engine_apb (
    pin       TEXT    NOT NULL,
    door      INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    at        TEXT    NOT NULL,
    PRIMARY KEY (pin, door)
) WITHOUT ROWID;
