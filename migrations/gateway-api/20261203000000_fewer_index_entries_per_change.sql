-- A change's claim and its finish are updates that touch indexed columns, so each writes an entry into every
-- index whose predicate the new row version meets. Two indexes that held every row version only need the
-- queued ones:
--
-- Enqueue looks up an object's queued changes (to supersede or fold them, never a running or finished
-- one); the guardrails read finished ones through `ad_changes_completed_by_object`. So the index on all
-- of an object's changes becomes one on its queued changes, and a claim and a finish no longer add to it.
DROP INDEX ad_changes_by_object;
CREATE INDEX ad_changes_queued_by_object ON ad_changes (object_id)
    WHERE state IN ('available', 'retryable', 'awaiting_approval');

-- A campaign's next fair round comes after its queued changes. A running change has been served already:
-- counting it only pushed the campaign's next change a round later than the others' (the round the
-- claims are serving still bounds it from below). So a claim no longer adds to this index either.
DROP INDEX ad_changes_open_by_campaign;
CREATE INDEX ad_changes_queued_by_campaign ON ad_changes ((COALESCE(campaign_id, object_id)), fair_round)
    WHERE state IN ('available', 'retryable');
