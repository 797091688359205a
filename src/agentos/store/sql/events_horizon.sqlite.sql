-- the highest sequence number below which every appended event has committed: on
-- SQLite the head itself (events are numbered in the database's one write transaction)
SELECT last_seq FROM event_log_head WHERE id = 1
