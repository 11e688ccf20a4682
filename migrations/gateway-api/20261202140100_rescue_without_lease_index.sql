-- Rescue looks for expired leases among the running changes every few seconds; there are few of those (at
-- most workers × claim size per replica), and `ad_changes_one_running_per_object` already lists exactly
-- them. The index on lease expiry cost an entry for every claim.
DROP INDEX ad_changes_expired_leases;
