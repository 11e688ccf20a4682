-- Guardrail settings a tenant chose for itself (ad_account_id = '') or for one of its ad accounts, as the
-- keys it changed; the executor lays them over the deployment's defaults (account over tenant).
CREATE TABLE guardrail_settings (
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL DEFAULT '',
    settings JSONB NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ad_account_id)
);
