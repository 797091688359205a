-- end one attempt as succeeded and append its task.succeeded event, in one round trip
-- (a single complete over HTTP; tasks_ended, events_numbered), unless the attempt's lock
-- owner :owner holds a lock or waits in a lock's queue: then nothing is written and the
-- caller ends it in a transaction that gives its locks back. One row comes back: held,
-- notified, and the task's row (its columns NULL when nothing was ended: held, or not
-- the task's running attempt)
WITH held AS (
    SELECT EXISTS (SELECT 1 FROM locks WHERE owner = :owner)
           OR EXISTS (SELECT 1 FROM lock_waiters WHERE owner = :owner) AS held
), /*include tasks_ended*/, news AS (
    SELECT 1 AS ord, id, agent, attempt, correlation_id FROM done
), /*include events_numbered*/, inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id,
                        causation_id, created_at)
    SELECT x.seqs[1], :event_id, 'task.succeeded', 'queue',
           jsonb_build_object('task_id', n.id, 'agent', n.agent, 'attempt', n.attempt),
           CAST(:event_rank AS smallint), n.correlation_id, n.id, statement_timestamp()
    FROM news n CROSS JOIN numbered x
    RETURNING seq, priority
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT seq, priority FROM inserted RETURNING seq
)
SELECT h.held,
       (SELECT count(*) FROM (SELECT pg_notify('agentos_events', '')
                              FROM (SELECT 1 FROM queued LIMIT 1) AS q) AS n) AS notified,
       /*columns*/
FROM held h LEFT JOIN done t ON true
