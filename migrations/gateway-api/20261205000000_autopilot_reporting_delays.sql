-- What each account's autopilot has learned of its reporting delays: the estimator's memory (how each day's
-- conversions grew between the cycles' reads) after the cycle `cycle_slot`.
CREATE TABLE autopilot_reporting_delays (
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    cycle_slot BIGINT NOT NULL,
    estimator JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ad_account_id)
);
