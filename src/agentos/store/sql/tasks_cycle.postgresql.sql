-- a worker's round trip as one statement (run in autocommit: one round trip in all):
-- end the attempts it finished as succeeded (fenced: only a task's running attempt
-- counts: tasks_ended), claim up to /*n*/ ready tasks (tasks_taken), and append the
-- task.succeeded and task.started events of both (task_events_inserted). Used when no
-- finished attempt is known to hold a lock: of :owners, the lock owners of those that may
-- (a remote worker's: it cannot tell), any that holds a lock or waits in a lock's queue
-- stops the statement (held: nothing ended, promoted or claimed; the caller ends them in
-- a transaction that gives their locks back). When it leaves a claim short (a capped
-- agent's task, or scheduled tasks it promoted) the caller claims the rest in a
-- transaction of its own.
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH held AS (
    SELECT coalesce(array_agg(h.owner), '{}') AS owners
    FROM (SELECT owner FROM locks WHERE owner = ANY(CAST(:owners AS text[]))
          UNION
          SELECT owner FROM lock_waiters WHERE owner = ANY(CAST(:owners AS text[]))) AS h
), /*include tasks_ended*/,
/*logged*/ /*include tasks_taken*/, news AS (
    -- the events, in order: the ended attempts', then the claimed ones' in claim order
    SELECT o.ord, (CAST(:event_ids AS text[]))[o.ord::int] AS event_id, o.type,
           CASE WHEN o.k = 1
                THEN jsonb_build_object('task_id', o.id, 'agent', o.agent,
                                        'attempt', o.attempt,
                                        'worker_id', CAST(:worker_id AS text))
                ELSE jsonb_build_object('task_id', o.id, 'agent', o.agent,
                                        'attempt', o.attempt) END AS payload,
           o.id, o.correlation_id
    FROM (SELECT row_number() OVER (ORDER BY x.k, x.priority DESC, x.seq, x.id) AS ord, x.*
          FROM (SELECT 0 AS k, 'task.succeeded' AS type, id, agent, attempt, correlation_id,
                       0 AS priority, 0 AS seq FROM done
                UNION ALL
                SELECT 1, 'task.started', id, agent, attempt, correlation_id, priority, seq
                FROM claimed) AS x) AS o
), /*include task_events_inserted*/
/*audit*/
-- the claimed rows, and one more (its id NULL) with what else happened: the batch's
-- outcome comes once, not repeated on every claimed row (the client would decode it
-- once for each)
SELECT c.*, NULL::bigint AS promoted, NULL::bigint AS capped, NULL::jsonb AS done,
       NULL::bigint AS notified, NULL::text[] AS held
FROM claimed c
UNION ALL
SELECT /*nulls*/, (SELECT count(*) FROM promoted), (SELECT count(*) FROM picked WHERE capped),
       (SELECT coalesce(jsonb_agg(jsonb_build_array(id, attempt)), '[]') FROM done),
       (SELECT count(*) FROM (SELECT pg_notify('agentos_events', '')
                              FROM (SELECT 1 FROM inserted LIMIT 1) AS q) AS n),
       (SELECT owners FROM held)
