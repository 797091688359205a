-- a batch's claim of the consumer's cursor, and the log's horizon (on SQLite the
-- write transaction holds the whole database already: nothing to lock)
SELECT cursor_seq, (/*include events_horizon*/) AS settled
FROM consumers WHERE name = :name
