-- append a batch of events in one round trip (events_inserted: numbered without a lock
-- other appenders wait for, inserted, queued for routing, listeners woken).
-- The batch is one JSON array (one parameter: cheaper to send than ten arrays);
-- each payload is the JSON text the caller encoded, kept as is. The numbers come back
-- in batch order (another appender's may fall between them)
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH news AS (
    SELECT b.ord, b.e FROM jsonb_array_elements(:batch::jsonb) WITH ORDINALITY AS b(e, ord)
), /*include events_inserted*/
/*audit*/
SELECT seq, (SELECT count(*) FROM woken) AS woken FROM inserted ORDER BY seq
