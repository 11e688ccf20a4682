-- The cross-learner: which account each learning event came from (pattern delivery is pooled per account
-- and never leaves ml-service), and which accounts share their patterns (opt-in; an account that does not
-- share neither contributes nor receives).
ALTER TABLE learning_events ADD COLUMN account_id TEXT NOT NULL DEFAULT '';

CREATE TABLE pattern_sharing_accounts (
    account_id TEXT PRIMARY KEY,
    shares BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
