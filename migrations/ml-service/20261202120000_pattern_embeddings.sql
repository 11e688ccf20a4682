-- A client's own embedding of an event's creative (a JSON array of 1 to 1,024 numbers), when it sent one:
-- the cross-learner pools the event under it as well, in a store of embedded patterns.
ALTER TABLE learning_events ADD COLUMN creative_embedding JSONB;
