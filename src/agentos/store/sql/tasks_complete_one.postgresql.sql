-- end one attempt as succeeded and append its task.succeeded event, in one round trip (a
-- single complete over HTTP; tasks_ended, task_events_inserted), unless the attempt's lock
-- owner :owner holds a lock or waits in a lock's queue: then nothing is written and the
-- caller ends it in a transaction that gives its locks back. One row comes back: held,
-- notified, and the task's row (its columns NULL when nothing was ended: held, or not
-- the task's running attempt)
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH held AS (
    SELECT EXISTS (SELECT 1 FROM locks WHERE owner = :owner)
           OR EXISTS (SELECT 1 FROM lock_waiters WHERE owner = :owner) AS held
), /*include tasks_ended*/, news AS (
    SELECT 1 AS ord, CAST(:event_id AS text) AS event_id, 'task.succeeded' AS type,
           jsonb_build_object('task_id', id, 'agent', agent, 'attempt', attempt) AS payload,
           id, correlation_id
    FROM done
), /*include task_events_inserted*/
/*audit*/
SELECT h.held,
       (SELECT count(*) FROM (SELECT pg_notify('agentos_events', '')
                              FROM (SELECT 1 FROM inserted LIMIT 1) AS q) AS n) AS notified,
       /*columns*/
FROM held h LEFT JOIN done t ON true
