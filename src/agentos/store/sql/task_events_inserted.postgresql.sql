-- fragment (CTEs mark, numbered, inserted, queued), included after a CTE "news" (ord,
-- event_id, type, payload, id, correlation_id) of the queue's events about tasks (id the
-- task's, their cause): number them (events_numbered), insert them at the statement's
-- time with source 'queue' and the rank :event_rank, and queue those a published trigger
-- may match for routing (routable). The including statement wakes listeners when
-- inserted has a row
/*include events_numbered*/, inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id,
                        causation_id, created_at)
    SELECT x.seqs[n.ord::int], n.event_id, n.type, 'queue', n.payload,
           CAST(:event_rank AS smallint), n.correlation_id, n.id, statement_timestamp()
    FROM news n CROSS JOIN numbered x
    RETURNING seq, priority, type
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT e.seq, e.priority FROM inserted e
    WHERE /*include routable*/
)
