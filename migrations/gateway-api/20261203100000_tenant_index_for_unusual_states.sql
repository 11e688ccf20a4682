-- `ad_changes_by_tenant_state` covered every change and took a new entry at its enqueue, its claim and its
-- finish (an update that changes an indexed column writes an entry in every index that covers the row): three
-- of the seventeen index entries a change cost. The tenant's listing and status read the table otherwise:
-- most changes are completed, so the newest of them are found walking the primary key backwards; queued and
-- running ones through the claim's and the running-object indexes, which hold only the queue. What remains
-- are the states a tenant lists on purpose and that are rare among its changes: held for approval, and the
-- dead letters. Their index holds only those rows.
DROP INDEX ad_changes_by_tenant_state;
CREATE INDEX ad_changes_unusual_by_tenant ON ad_changes (tenant_id, id)
    WHERE state IN ('awaiting_approval', 'discarded', 'cancelled');
