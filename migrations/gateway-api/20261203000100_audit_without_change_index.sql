-- Every change writes two audit entries or more. The audit trail is read by tenant and object
-- (`GET /v1/audit`, `audit_log_by_object`); an object's entries are few, so a change's own are found among
-- them. The index by change id served nothing but tests, at an index entry per audit row.
DROP INDEX audit_log_by_change;
