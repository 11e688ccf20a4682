-- The audit trail no longer references ad_changes with a foreign key. Audit entries are written only by the
-- queue's own statements, in the transaction that makes the change they describe, so the key protected
-- nothing our code could break; it cost a lookup and a row lock on the change (FOR KEY SHARE) for every
-- audit row, two per change at least (executor-bench: ~7% more changes/s without it, four alternating
-- pairs, within the machine's noise). And an audit trail should outlive the queue rows it describes: with
-- the key, pruning old changes would have had to delete their history too.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_ad_change_id_fkey;
