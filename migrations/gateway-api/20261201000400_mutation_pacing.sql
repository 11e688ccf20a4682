-- Writes per ad account, counted in windows shared by every worker, so together they stay under Meta's 100
-- mutations per second per account.
ALTER TABLE graph_account_pacing
    ADD COLUMN mutation_window_start TIMESTAMPTZ,
    ADD COLUMN mutations_in_window INTEGER NOT NULL DEFAULT 0;
