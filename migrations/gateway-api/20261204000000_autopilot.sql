-- The autopilot: per ad account, whether it runs, in which mode and how often; and one row per cycle it ran.

CREATE TABLE autopilot_accounts (
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- live: enqueue the changes; approval: enqueue them held for approval; dry_run: record them only.
    mode TEXT NOT NULL CHECK (mode IN ('live', 'approval', 'dry_run')),
    -- A cycle per this many seconds of the autopilot's clock (simulated seconds against meta-sim).
    interval_seconds INTEGER NOT NULL CHECK (interval_seconds > 0),
    -- The account's daily budget to split, in minor units; NULL keeps the total its ad sets have now.
    total_daily_budget_minor BIGINT CHECK (total_daily_budget_minor > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ad_account_id)
);

-- One cycle of one account. A cycle is the slot floor(clock / interval): every replica computes the same
-- slot, so the unique key lets one of them run it, and a rerun after a crash takes over the same row (and
-- enqueues under the same idempotency keys, so nothing twice).
CREATE TABLE autopilot_runs (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    cycle_slot BIGINT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    attempt INTEGER NOT NULL DEFAULT 1,
    runner TEXT NOT NULL,
    lease_expires_at TIMESTAMPTZ NOT NULL,
    -- The autopilot clock's time (Unix seconds) when the cycle started.
    clock_unix BIGINT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    ads_read INTEGER NOT NULL DEFAULT 0,
    changes_planned INTEGER NOT NULL DEFAULT 0,
    changes_enqueued INTEGER NOT NULL DEFAULT 0,
    model_version TEXT,
    error TEXT,
    -- Each recommendation and what became of it.
    summary JSONB,
    -- Also the index the run listing of an account reads, newest first.
    UNIQUE (tenant_id, ad_account_id, cycle_slot)
);

