-- The guardrails read what was applied lately to an object and to its campaign before every decision;
-- without these, each read scanned every completed change of the tenant.
CREATE INDEX ad_changes_completed_by_object ON ad_changes (tenant_id, object_id, finalized_at) WHERE state = 'completed';
CREATE INDEX ad_changes_completed_by_campaign ON ad_changes (tenant_id, campaign_id, finalized_at) WHERE state = 'completed';
