-- Who may send events to the relay: each source has its own ingest token (only its SHA-256 is stored) and
-- the pixels it may write to.
CREATE TABLE ingest_sources (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    pixel_ids TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
ALTER TABLE events ADD COLUMN source_id BIGINT REFERENCES ingest_sources (id);
