-- a batch's claim of the consumer's cursor, and the log's horizon (on SQLite the
-- write transaction holds the whole database already: nothing to lock)
SELECT cursor_seq, (SELECT last_seq FROM event_log_head WHERE id = 1) AS settled
FROM consumers WHERE name = :name
