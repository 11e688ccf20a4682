-- A test event (sent with a test_event_code, shown only in Events Manager's test view) is de-duplicated only
-- against test events with the same code: a developer's test copy of an event must never make the relay drop
-- the production event with the same event id as its duplicate.
DROP INDEX events_deduplication;
CREATE UNIQUE INDEX events_deduplication ON events (pixel_id, event_name, event_id, (COALESCE(test_event_code, '')));
