-- The events table is a queue: every delivery turns a pending row into a delivered one, and the dead entries
-- that leaves at the head of the pending indexes slow every claim until vacuum removes them. Vacuum it after 1%
-- of its rows changed instead of 20%, without the cost delay, so the head of the queue stays clean under
-- sustained delivery.
ALTER TABLE events SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.02
);

-- A claim takes one pixel's (and test-event code's) due events in due order. With the code in the index the
-- claim walks it in that order and stops at the batch size; without it the planner misjudged how many rows
-- `test_event_code IS NOT DISTINCT FROM ...` keeps and scanned the whole table (1.1 s a claim with 380,000
-- pending, relay-bench).
DROP INDEX events_pending_by_pixel;
CREATE INDEX events_pending_by_pixel ON events (pixel_id, (COALESCE(test_event_code, '')), next_attempt_at, id)
    WHERE state = 'pending';
