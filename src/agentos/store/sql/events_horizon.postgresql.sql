-- the highest sequence number below which every appended event has committed (or
-- rolled back): the sequence's last number handed out, read first, then capped below
-- the lowest in-flight appender's mark (events_numbered). A reader must take its
-- snapshot after this (its next statement): an appender finished here is visible there
SELECT CASE WHEN m.low IS NULL THEN s.head ELSE least(s.head, m.low - 1) END AS horizon
FROM (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS head
      FROM events_seq) AS s
CROSS JOIN LATERAL (
    -- LATERAL: the locks are read after the sequence (a mark taken later is above it)
    SELECT min((l.classid::bigint - 1000000000) * 2147483648 + l.objid::bigint) AS low
    FROM pg_locks l
    WHERE s.head IS NOT NULL AND l.locktype = 'advisory' AND l.objsubid = 2
        AND l.classid::bigint >= 1000000000
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS m
