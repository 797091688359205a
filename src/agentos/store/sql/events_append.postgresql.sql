-- append a batch of events in one round trip: number them (events_numbered: no lock
-- other appenders wait for), insert them, queue them for routing, wake listeners.
-- The batch is one JSON array (one parameter: cheaper to send than ten arrays);
-- each payload is the JSON text the caller encoded, kept as is. The numbers come back
-- in batch order (another appender's may fall between them)
WITH news AS (
    SELECT b.ord, b.e FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS b(e, ord)
), /*include events_numbered*/, inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, causation_id,
                        run_id, subject, dedup_key, created_at)
    SELECT x.seq, n.e ->> 'id', n.e ->> 'type', n.e ->> 'source', n.e -> 'payload',
           (n.e ->> 'priority')::smallint, n.e ->> 'correlation_id', n.e ->> 'causation_id',
           n.e ->> 'run_id', n.e ->> 'subject', n.e ->> 'dedup_key', %(created_at)s
    FROM news n JOIN numbered x ON x.ord = n.ord
    RETURNING seq, priority
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT seq, priority FROM inserted RETURNING seq
), woken AS (
    SELECT pg_notify('agentos_events', '') FROM (SELECT 1 FROM queued LIMIT 1) AS q
)
SELECT seq, (SELECT count(*) FROM woken) AS woken FROM queued ORDER BY seq
