-- fragment (CTEs mark, numbered), included by every statement that appends events: number
-- the rows of the including statement's CTE "news" (1..n in its column ord) from the
-- sequence events_seq, without a lock that other appenders wait for. Sequence numbers
-- commit out of order, so first the appender marks itself in flight with a shared
-- advisory lock keyed by the lowest number it can get (the sequence's next value, read
-- before any nextval), held to the end of its transaction: a reader reads only below the
-- lowest mark (events.horizon), and so never passes a number that commits later.
-- The key: (1000000000 + low / 2^31, low mod 2^31), both int4 and never negative.
mark AS (
    SELECT pg_advisory_xact_lock_shared(1000000000 + (s.low >> 31)::int,
                                        (s.low & 2147483647)::int)
    FROM (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS low
          FROM events_seq) AS s
    WHERE EXISTS (SELECT 1 FROM news)
), numbered AS (
    -- one number per event, in one sorted array (nextval's own order is the scan's): the
    -- event of news.ord n (1..count, no gaps) gets seqs[n]. An array and not a join on
    -- ord, which the planner, expecting one row, made a nested loop: quadratic per batch
    SELECT array_agg(x.seq ORDER BY x.seq) AS seqs
    FROM (SELECT nextval('events_seq') AS seq FROM news, mark) AS x
)
