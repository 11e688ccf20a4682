-- The instant learner's event log: every accepted learning event, in the one order every replica applies.
-- Writers take an advisory lock while they insert, so `seq` order is commit order and a replica that has
-- applied up to seq N never misses an event committed later below N.
CREATE TABLE learning_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    ad_id TEXT NOT NULL,
    -- Encoded features as [[name, value], ...], sorted by name (jsonb arrays keep their order).
    features JSONB NOT NULL,
    impressions DOUBLE PRECISION NOT NULL,
    clicks DOUBLE PRECISION NOT NULL,
    matured_clicks DOUBLE PRECISION NOT NULL,
    conversions DOUBLE PRECISION NOT NULL,
    value_minor_units BIGINT,
    currency TEXT,
    event_time TIMESTAMPTZ,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The creative features last seen for each ad, for events that arrive without them (conversions relayed
-- from websites know the ad, not its creative).
CREATE TABLE ad_creative_features (
    ad_id TEXT PRIMARY KEY,
    features JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Learner state after applying the log through `through_seq`, under the constants whose fingerprint is
-- recorded: a restart loads the newest usable one and replays the log after it.
CREATE TABLE learner_snapshots (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    through_seq BIGINT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    state JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learner_snapshots_newest ON learner_snapshots (config_fingerprint, through_seq DESC);
