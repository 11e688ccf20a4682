-- Bearer API keys, each scoped to one tenant. Only a SHA-256 of the key is stored; the key itself is shown
-- once, when it is created.
CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    -- The first characters of the key, to tell keys apart in listings without storing the secret.
    key_prefix TEXT NOT NULL,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- Who approved a change held for approval; an approved change is not held for approval again.
ALTER TABLE ad_changes ADD COLUMN approved_by TEXT, ADD COLUMN approved_at TIMESTAMPTZ;
