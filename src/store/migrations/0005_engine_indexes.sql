-- The engine looks up the linkages of every event it logs by event type
-- (input_io_settings is already served by its UNIQUE (number, in_type)).
CREATE INDEX linkages_event ON linkages(event_type);
