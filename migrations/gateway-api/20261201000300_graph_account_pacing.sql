-- What Meta's usage headers said about each ad account, shared by every executor worker and replica: while
-- `blocked_until` is ahead, no worker claims that account's changes (Meta said to wait, or usage is high
-- enough that adloop slows down before Meta throttles).
CREATE TABLE graph_account_pacing (
    ad_account_id TEXT PRIMARY KEY,  -- act_<digits>
    highest_percent DOUBLE PRECISION NOT NULL DEFAULT 0,
    blocked_until TIMESTAMPTZ,
    reason TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
