-- a batch's claim of the consumer's cursor, locked to the end of the transaction (none
-- when another transaction holds it: that one is applying a batch, or holds it back),
-- and the log's horizon, read after the lock: in the claim's own scan it would be read
-- before, and a cursor another server moved meanwhile past it would come back with
-- it (the batch would move the cursor back). The batch reads its events in a later
-- statement, so with a later snapshot
WITH claimed AS MATERIALIZED (
    SELECT cursor_seq FROM consumers WHERE name = :name
    FOR UPDATE SKIP LOCKED
)
SELECT claimed.cursor_seq, coalesce((/*include events_horizon*/), 0) AS settled
FROM claimed
