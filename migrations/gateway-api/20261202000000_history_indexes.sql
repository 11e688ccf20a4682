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
