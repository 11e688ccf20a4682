-- Claims spread over campaigns (Meta takes one ad set of a campaign per batch) without ranking a window of
-- candidates in every claim: each change gets its place among its campaign's open changes when it is
-- enqueued (`fair_round`: 0 for a campaign's first open change, 1 for its second, …, never below the round
-- the claims are serving), and claims take changes in (priority, fair_round, run_at, id) order straight
-- from an index, so the first changes of a claim are of different campaigns.
ALTER TABLE ad_changes ADD COLUMN fair_round BIGINT NOT NULL DEFAULT 0;

DROP INDEX ad_changes_claimable;
CREATE INDEX ad_changes_claimable ON ad_changes (priority DESC, fair_round, run_at, id)
    WHERE state IN ('available', 'retryable');

-- A campaign's open changes by round: where its next change goes. A change without a campaign is its own.
CREATE INDEX ad_changes_open_by_campaign ON ad_changes ((COALESCE(campaign_id, object_id)), fair_round)
    WHERE state IN ('available', 'retryable', 'running');
