-- Learner snapshots as postcard bytes (a compact binary serde encoding) in parts of at most 8 MiB, instead of
-- one JSONB value. At the pattern stores' capacity (200,000 patterns of 64 dimensions and 20,000 embeddings of
-- 1,024) the JSON came to about 470 MB: past the largest JSONB value Postgres stores (255 MB), and, held as
-- one string beside the state it described, past ml-service's memory limit. A snapshot's row is written in
-- the same transaction as its parts, so a visible snapshot is complete.
CREATE TABLE learner_state_snapshots (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    through_seq BIGINT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    parts INTEGER NOT NULL CHECK (parts >= 1),
    total_bytes BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learner_state_snapshots_newest ON learner_state_snapshots (config_fingerprint, through_seq DESC);

CREATE TABLE learner_state_snapshot_parts (
    snapshot_id BIGINT NOT NULL REFERENCES learner_state_snapshots (id) ON DELETE CASCADE,
    part INTEGER NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (snapshot_id, part)
);

-- The JSON snapshots are no longer written or read. The table stays for one release, so a replica of the
-- previous version that restarts during a rolling update still starts; a later migration drops it.
COMMENT ON TABLE learner_snapshots IS 'unused since 2026-12-04 (learner_state_snapshots); drop after the rollout';
