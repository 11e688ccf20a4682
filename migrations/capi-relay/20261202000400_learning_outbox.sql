-- Attributed conversions (events whose custom_data carries the ad they came from) for ml-service's
-- learner. A row is written in the same statement that stores its event, so an acknowledged conversion is
-- never missing here; a forwarder sends each to ml-service's RecordEvent (whose event id makes a re-send
-- harmless) and deletes it once ml-service has it.
CREATE TABLE learning_outbox (
    id BIGSERIAL PRIMARY KEY,
    pixel_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    ad_id TEXT NOT NULL,
    custom_data JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learning_outbox_due ON learning_outbox (next_attempt_at, id) WHERE state = 'pending';
