-- Meta's test view: an event sent with a test_event_code shows only in Events Manager's test tab. The code
-- comes with the request or from the source's default, and travels with each stored event so a batch sent
-- to Meta carries one code (or none).
ALTER TABLE events ADD COLUMN test_event_code TEXT;
ALTER TABLE ingest_sources ADD COLUMN test_event_code TEXT;

-- A pixel whose access token Meta rejected (code 190) or that has none configured is paused: nothing is
-- sent for it until `paused_until` or until an operator resumes it (`capi-relay pixels resume`).
CREATE TABLE pixel_pauses (
    pixel_id TEXT PRIMARY KEY,
    paused_until TIMESTAMPTZ NOT NULL,
    reason JSONB,
    paused_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
