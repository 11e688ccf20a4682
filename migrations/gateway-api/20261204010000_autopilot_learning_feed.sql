-- What each account's autopilot last told ml-service's learner: the delivery feed's memory (every ad's last
-- lifetime totals and its recent clicks, for maturing) after the cycle `cycle_slot`.
CREATE TABLE autopilot_learning_feeds (
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    cycle_slot BIGINT NOT NULL,
    feed JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ad_account_id)
);
