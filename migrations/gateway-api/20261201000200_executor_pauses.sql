-- The executor's kill switch: while a pause covers a change (everything, its tenant or its ad account), no
-- worker claims it. Removing the row resumes.
CREATE TABLE executor_pauses (
    scope TEXT NOT NULL CHECK (scope IN ('global', 'tenant', 'account')),
    -- '' for the global pause; the tenant id; or the ad account id (within `tenant_id`).
    scope_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    paused_by TEXT NOT NULL,
    paused_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, tenant_id, scope_id)
);
