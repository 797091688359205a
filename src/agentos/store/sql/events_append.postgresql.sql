-- append a batch of events in one round trip: number them under the head row
-- lock (held to commit), insert them, queue them for routing, wake listeners.
-- The batch is one JSON array (one parameter: cheaper to send than ten arrays);
-- each payload is the JSON text the caller encoded, kept as is
WITH head AS (
    UPDATE event_log_head SET last_seq = last_seq + %(n)s WHERE id = 1 RETURNING last_seq
), batch AS (
    SELECT head.last_seq - %(n)s + b.ord AS seq, b.e
    FROM head, jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS b(e, ord)
), inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, causation_id,
                        run_id, subject, dedup_key, created_at)
    SELECT seq, e ->> 'id', e ->> 'type', e ->> 'source', e -> 'payload',
           (e ->> 'priority')::smallint, e ->> 'correlation_id', e ->> 'causation_id',
           e ->> 'run_id', e ->> 'subject', e ->> 'dedup_key', %(created_at)s
    FROM batch
    RETURNING seq, priority
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT seq, priority FROM inserted RETURNING seq
)
SELECT min(seq) AS first_seq, pg_notify('agentos_events', '') FROM queued
