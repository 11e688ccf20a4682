-- Accepted Conversions API events, committed before the relay acknowledges them. `body` is the event as
-- it will be sent to Meta, its user_data already normalised and hashed (raw PII is never stored).
-- (pixel_id, event_name, event_id) is Meta's de-duplication key and the relay's own: a re-sent event is
-- stored once. Rows stay at least the 48 h de-duplication window.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    pixel_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    action_source TEXT NOT NULL,
    -- Whether the relay derived event_id from the event (the client sent none).
    event_id_derived BOOLEAN NOT NULL DEFAULT false,
    body JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_deduplication ON events (pixel_id, event_name, event_id);
CREATE INDEX events_pending_by_pixel ON events (pixel_id, id) WHERE state = 'pending';
