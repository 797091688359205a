-- fragment (CTEs mark, numbered, inserted, queued, woken), included after a CTE "news"
-- (ord, e) of the including statement, e an event as JSON (id, type, source, payload,
-- priority, correlation_id, causation_id, run_id, subject, dedup_key): number the events
-- (events_numbered: no lock other appenders wait for), insert them at the parameter
-- created_at, queue those a published trigger may match for routing (routable) and wake
-- listeners
/*include events_numbered*/, inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, causation_id,
                        run_id, subject, dedup_key, created_at)
    SELECT x.seqs[n.ord::int], n.e ->> 'id', n.e ->> 'type', n.e ->> 'source', n.e -> 'payload',
           (n.e ->> 'priority')::smallint, n.e ->> 'correlation_id', n.e ->> 'causation_id',
           n.e ->> 'run_id', n.e ->> 'subject', n.e ->> 'dedup_key', :created_at
    FROM news n CROSS JOIN numbered x
    RETURNING seq, priority, type
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT e.seq, e.priority FROM inserted e
    WHERE /*include routable*/
), woken AS (
    SELECT pg_notify('agentos_events', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS q
)
