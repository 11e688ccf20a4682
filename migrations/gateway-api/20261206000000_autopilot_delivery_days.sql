-- Each ad's spend and impressions by day over the account's last finished days, as the cycle `cycle_slot`
-- read them for the delivery curves: later cycles of the same day reuse them instead of reading every ad's
-- days from Meta again (finished days change only when a new day finishes).
CREATE TABLE autopilot_delivery_days (
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    cycle_slot BIGINT NOT NULL,
    days JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ad_account_id)
);
