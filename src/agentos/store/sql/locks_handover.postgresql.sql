-- release a lock and grant it to the best live waiter (priority, then arrival), or free
-- it when none is left, with their lock.released and lock.acquired events (events_inserted);
-- a waiting task is made due at once; the notification names the waiter's entry, the
-- token and the lease's end ("granted ENTRY TOKEN EXPIRY", store.locks.noted_grant).
-- Sent after a statement that locked the lock row in the same transaction, so this
-- one's snapshot sees every waiter that queued before.
-- No row unless the owner holds the lock with this token and its lease is live.
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH held AS (
    SELECT resource, task_id, acquired_at FROM locks
    WHERE resource = :resource AND owner = :owner AND token = :token
      AND expires_at >= statement_timestamp()
), nxt AS (
    DELETE FROM lock_waiters WHERE id = (
        SELECT w.id FROM lock_waiters w
        WHERE w.resource = :resource AND w.expires_at >= statement_timestamp()
        ORDER BY w.priority DESC, w.id LIMIT 1)
    AND EXISTS (SELECT 1 FROM held)
    RETURNING id, owner, priority, ttl_s, metadata, task_id, agent, created_at
), moved AS (
    UPDATE locks l SET
        token = CASE WHEN n.id IS NULL THEN l.token ELSE l.token + 1 END,
        owner = n.owner, priority = n.priority,
        acquired_at = CASE WHEN n.id IS NULL THEN NULL ELSE statement_timestamp() END,
        expires_at = statement_timestamp() + make_interval(secs => n.ttl_s),
        metadata = n.metadata, task_id = n.task_id, agent = n.agent,
        updated_at = statement_timestamp(),
        queued = EXISTS (SELECT 1 FROM lock_waiters w
                         WHERE w.resource = l.resource AND w.id <> coalesce(n.id, 0))
    FROM held h LEFT JOIN nxt n ON true
    WHERE l.resource = h.resource
    RETURNING l.token, l.owner, l.expires_at, h.task_id AS held_task, h.acquired_at AS held_since,
              n.id AS waiter, n.task_id AS waiter_task, n.priority AS waiter_priority,
              n.created_at AS waiter_since
), due AS (
    UPDATE tasks t SET run_at = statement_timestamp(), updated_at = statement_timestamp()
    FROM moved m WHERE t.id = m.waiter_task AND t.status = 'scheduled'
    RETURNING t.id
), freed AS (
    SELECT held_task AS task_id, held_since AS acquired_at FROM moved
), news AS (
    /*include locks_released*/
    UNION ALL
    SELECT 2, jsonb_build_object(
        'id', :grant_event_id::text, 'type', 'lock.acquired', 'source', 'locks',
        'priority', :rank::int, 'correlation_id', :grant_event_id::text,
        'causation_id', m.waiter_task,
        'payload', jsonb_build_object(
            'resource', :resource::text, 'type', :type::text, 'owner', m.owner,
            'token', m.token, 'priority', m.waiter_priority,
            'expires_at', to_char(m.expires_at AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
            'waited_ms', round(
                (extract(epoch FROM statement_timestamp() - m.waiter_since) * 1000)::numeric,
                1))
            || jsonb_strip_nulls(jsonb_build_object('task_id', m.waiter_task))) AS e
    FROM moved m WHERE m.waiter IS NOT NULL
), note AS (
    SELECT concat_ws(' ', 'granted', m.waiter, m.token,
                     to_char(m.expires_at AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')) AS text
    FROM moved m WHERE m.waiter IS NOT NULL
), /*include events_inserted*/, told AS (
    SELECT pg_notify('agentos_locks', (SELECT text FROM note)),
           (SELECT count(*) FROM (SELECT pg_notify('agentos_tasks', '') FROM due) AS d)
    FROM moved m WHERE m.waiter IS NOT NULL
)
/*audit*/
SELECT m.waiter, m.waiter_task, (SELECT text FROM note) AS note,
       (SELECT count(*) FROM woken) AS woken,
       (SELECT count(*) FROM told) AS told
FROM moved m
