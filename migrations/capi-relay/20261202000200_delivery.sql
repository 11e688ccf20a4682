-- Delivery to Meta: a worker leases a pixel's due pending events (the lease columns; an expired lease makes
-- them claimable again), sends them, and records the outcome fenced on (lease owner, attempt).
ALTER TABLE events
    ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN delivered_at TIMESTAMPTZ,
    ADD COLUMN last_error JSONB;
DROP INDEX events_pending_by_pixel;
CREATE INDEX events_due ON events (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX events_pending_by_pixel ON events (pixel_id, next_attempt_at, id) WHERE state = 'pending';
