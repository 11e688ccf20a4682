-- The safe executor's queue of ad changes and its audit trail (gateway-api's own schema).
--
-- One row per requested change. Budgets are minor units of the ISO 4217 currency; the executor converts them
-- to Meta's units when it writes. States: available (may be claimed from run_at), running (claimed under a
-- lease), retryable (failed transiently; claimable again from run_at), awaiting_approval (never claimed until
-- approved), completed, discarded (a permanent error, kept as a dead letter), cancelled (by a user, or
-- superseded by a newer absolute change to the same object and field).
CREATE TABLE ad_changes (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    campaign_id TEXT,
    ad_set_id TEXT,
    ad_id TEXT,
    -- The Graph object the change writes: the ad set for budgets; the ad, ad set or campaign for a status.
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('budget_set', 'budget_increase', 'budget_decrease', 'status_change')),
    currency CHAR(3),
    old_budget_minor BIGINT CHECK (old_budget_minor >= 0),
    -- budget_set: the absolute budget; budget_increase / budget_decrease: the amount to move by.
    requested_budget_minor BIGINT CHECK (requested_budget_minor >= 0),
    old_status TEXT,
    requested_status TEXT CHECK (requested_status IN ('ACTIVE', 'PAUSED', 'ARCHIVED')),
    reason TEXT NOT NULL DEFAULT '',
    confidence DOUBLE PRECISION CHECK (confidence BETWEEN 0 AND 1),
    source TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('available', 'running', 'retryable', 'completed', 'discarded',
                                         'cancelled', 'awaiting_approval')),
    priority SMALLINT NOT NULL DEFAULT 0,
    run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
    lease_owner TEXT,
    lease_expires_at TIMESTAMPTZ,
    -- Set when a lease expired mid-attempt: the outcome of the Graph call is unknown, so the next attempt
    -- reads the object's current value before writing.
    needs_reconcile BOOLEAN NOT NULL DEFAULT false,
    -- One entry per attempt outcome and per lost lease: {attempt, at, outcome, code, subcode, message}.
    errors JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finalized_at TIMESTAMPTZ,
    CHECK ((kind = 'status_change') = (requested_status IS NOT NULL)),
    CHECK ((kind = 'status_change') OR (currency IS NOT NULL AND requested_budget_minor IS NOT NULL)),
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- A retried request carries the same key: it finds the change it made, never enqueues a second one.
CREATE UNIQUE INDEX ad_changes_idempotency ON ad_changes (tenant_id, idempotency_key);
-- At most one change runs per object at a time.
CREATE UNIQUE INDEX ad_changes_one_running_per_object ON ad_changes (object_id) WHERE state = 'running';
-- What the claim scans.
CREATE INDEX ad_changes_claimable ON ad_changes (priority DESC, run_at, id) WHERE state IN ('available', 'retryable');
CREATE INDEX ad_changes_expired_leases ON ad_changes (lease_expires_at) WHERE state = 'running';
CREATE INDEX ad_changes_by_tenant_state ON ad_changes (tenant_id, state, id);
CREATE INDEX ad_changes_by_object ON ad_changes (object_id, id);

-- Everything that happened to a change, and who did it.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ad_change_id BIGINT REFERENCES ad_changes (id),
    object_id TEXT,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail JSONB NOT NULL DEFAULT '{}',
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_change ON audit_log (ad_change_id, id);
CREATE INDEX audit_log_by_object ON audit_log (tenant_id, object_id, id);
