-- The guardrails read what was applied lately to a round's objects and campaigns before deciding (with
-- `object_id = ANY(...)` / `campaign_id = ANY(...)`); without these, each read scanned every completed
-- change of the tenant. One column each, so no other index on completed changes looks cheaper to the
-- planner.
CREATE INDEX ad_changes_completed_by_object ON ad_changes (object_id) WHERE state = 'completed';
CREATE INDEX ad_changes_completed_by_campaign ON ad_changes (campaign_id) WHERE state = 'completed';

-- A queue table changes fast: analyse it after 2% of its rows changed rather than autovacuum's 10%.
-- (The executor also analyses it itself when it grew a lot since the last analysis; see
-- executor/table_statistics.rs.)
ALTER TABLE ad_changes SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);

-- Writes reserved per ad account in the last moments, as a sliding log: a fixed window let two full
-- windows' writes land within one second at their boundary (twice Meta's limit; meta-sim's pacing flood
-- caught it). The columns of the fixed window go.
CREATE TABLE graph_account_mutations (
    ad_account_id TEXT NOT NULL,
    reserved_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    writes INTEGER NOT NULL CHECK (writes > 0)
);
CREATE INDEX graph_account_mutations_by_account ON graph_account_mutations (ad_account_id, reserved_at);
ALTER TABLE graph_account_pacing DROP COLUMN mutation_window_start, DROP COLUMN mutations_in_window;

-- Meta's budget lock on an ad set (613 / 1487632: its budget changed too often within an hour), kept
-- until it passes so every worker holds that ad set's budget changes instead of being refused again.
CREATE TABLE graph_budget_locks (
    object_id TEXT PRIMARY KEY,
    locked_until TIMESTAMPTZ NOT NULL
);
