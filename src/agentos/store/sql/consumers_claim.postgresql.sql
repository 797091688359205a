-- a batch's claim of the consumer's cursor, locked to the end of the transaction (none
-- when another transaction holds it: that one is applying a batch, or holds it back),
-- and the log's horizon; the batch reads its events in a later statement, so with a
-- later snapshot
SELECT c.cursor_seq, coalesce((/*include events_horizon*/), 0) AS settled
FROM consumers c WHERE c.name = :name
FOR UPDATE OF c SKIP LOCKED
