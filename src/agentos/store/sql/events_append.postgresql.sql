-- append a batch of events in one round trip: number them under the head row
-- lock (held to commit), insert them, queue them for routing, wake listeners
WITH head AS (
    UPDATE event_log_head SET last_seq = last_seq + %(n)s WHERE id = 1 RETURNING last_seq
), batch AS (
    SELECT head.last_seq - %(n)s + b.ord AS seq, b.*
    FROM head, unnest(
        %(id)s::text[], %(type)s::text[], %(source)s::text[], %(payload)s::jsonb[],
        %(priority)s::smallint[], %(correlation_id)s::text[], %(causation_id)s::text[],
        %(run_id)s::text[], %(subject)s::text[], %(dedup_key)s::text[]
    ) WITH ORDINALITY AS b(id, type, source, payload, priority, correlation_id, causation_id,
                           run_id, subject, dedup_key, ord)
), inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, causation_id,
                        run_id, subject, dedup_key, created_at)
    SELECT seq, id, type, source, payload, priority, correlation_id, causation_id, run_id,
           subject, dedup_key, %(created_at)s
    FROM batch
    RETURNING seq, priority
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT seq, priority FROM inserted RETURNING seq
)
SELECT min(seq) AS first_seq, pg_notify('agentos_events', '') FROM queued
