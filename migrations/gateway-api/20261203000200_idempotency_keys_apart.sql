-- A change's idempotency key is written once, when it is enqueued, but a unique index on `ad_changes` took a
-- new entry, with its uniqueness check, at every claim and every finish as well (each is an update that
-- touches indexed columns). The keys move to a table of their own, written once per change: enqueue claims
-- the key here (`ON CONFLICT DO NOTHING`: a repeated request finds the change the key already names) and
-- inserts the change under the id it reserved. The column stays on the change for reading.
CREATE TABLE ad_change_idempotency_keys (
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    ad_change_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);
INSERT INTO ad_change_idempotency_keys (tenant_id, idempotency_key, ad_change_id, created_at)
    SELECT tenant_id, idempotency_key, id, created_at FROM ad_changes;
DROP INDEX ad_changes_idempotency;
