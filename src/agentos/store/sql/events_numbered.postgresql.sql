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
    -- one number per event, handed to them in news order (nextval's own order is the
    -- join's, so the numbers are sorted first)
    SELECT row_number() OVER (ORDER BY x.seq) AS ord, x.seq
    FROM (SELECT nextval('events_seq') AS seq FROM news, mark) AS x
)
