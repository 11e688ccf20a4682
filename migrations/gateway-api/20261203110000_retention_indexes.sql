-- Retention (`executor.retention`) prunes rows by age. These BRIN indexes let a prune find the old rows
-- without reading the whole table: rows are written in time order, so a summary of each range of pages
-- (128 by default) tells where old rows are. A BRIN entry is written per range of pages, not per row, so
-- they add next to nothing to a change's write work (unlike a B-tree on the same column).
CREATE INDEX ad_changes_finished_when ON ad_changes USING brin (finalized_at);
CREATE INDEX audit_log_written_when ON audit_log USING brin (at);
CREATE INDEX ad_change_idempotency_keys_written_when ON ad_change_idempotency_keys USING brin (created_at);
