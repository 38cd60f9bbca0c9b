-- Provisioning as deployed servers do it (issue 10).
--
-- A command is identified by its ID *and* its text: servers number their
-- commands again from 1 after a restart, reuse time-of-day IDs, or are
-- restored from a backup. `digest` is the hex MD5 of the command text as
-- received; rows written before it existed keep '' and match no text, so
-- their IDs run again when they come back.
ALTER TABLE command_results ADD COLUMN digest TEXT NOT NULL DEFAULT '';

-- `SuperAuthorize` of the user record of ZKTeco's C3/inBio panels (their
-- servers send it with every user): 1 makes the user a super user on
-- every door, as a SuperAuthorize row with DoorID 0 does.
ALTER TABLE users ADD COLUMN super_authorize INTEGER NOT NULL DEFAULT 0;
