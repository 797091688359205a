-- take a lock that is free (or new) in one round trip and append its lock.acquired event
-- (events_inserted). No row when it is held, lapsed or not, or when a task's claim names
-- an attempt that is no longer running: the caller then takes the full path (expiry,
-- the queue, the error). A lock this statement's snapshot sees held is refused before
-- the insert, so the refusal locks nothing and writes nothing: no transaction id, no
-- commit to flush, no wait for a transaction that holds the row (a contended lock's
-- waiter tries this first). A lock freed after the snapshot and held again since is
-- still refused by the conflict's WHERE, which sees the row's newest version (and then
-- locks it). A lock taken also takes its new holder out of its queue, where it may still
-- have an entry (a waiter that takes a lock freed without a grant, a kept place): the
-- holder's next release would otherwise grant the lock back to that stale entry.
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH taken AS (
    INSERT INTO locks AS l (resource, type, token, owner, priority, acquired_at, expires_at,
                            metadata, task_id, agent, updated_at)
    SELECT :resource::text, :type, 1, :owner::text, :priority, statement_timestamp(),
           statement_timestamp() + make_interval(secs => :ttl_s), :metadata::jsonb,
           :task_id::text, :agent, statement_timestamp()
    WHERE NOT EXISTS (SELECT 1 FROM locks h
                      WHERE h.resource = :resource::text AND h.owner IS NOT NULL)
      AND (:attempt::int IS NULL OR EXISTS (
        SELECT 1 FROM tasks t
        WHERE t.id = :task_id::text AND t.status = 'running' AND t.attempt = :attempt::int))
    ON CONFLICT (resource) DO UPDATE SET
        token = l.token + 1, owner = excluded.owner, priority = excluded.priority,
        acquired_at = excluded.acquired_at, expires_at = excluded.expires_at,
        metadata = excluded.metadata, task_id = excluded.task_id, agent = excluded.agent,
        updated_at = excluded.updated_at
    WHERE l.owner IS NULL
    RETURNING l.token, l.expires_at
), settled AS (
    DELETE FROM lock_waiters w
    WHERE w.resource = :resource::text AND w.owner = :owner::text AND EXISTS (SELECT 1 FROM taken)
    RETURNING 1
), news AS (
    SELECT 1 AS ord, jsonb_build_object(
        'id', :event_id::text, 'type', 'lock.acquired', 'source', 'locks',
        'priority', :rank::int, 'correlation_id', :event_id::text,
        'causation_id', :task_id::text,
        'payload', :payload::jsonb || jsonb_build_object(
            'token', token,
            'expires_at', to_char(expires_at AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))) AS e
    FROM taken
), /*include events_inserted*/
/*audit*/
SELECT token, expires_at, (SELECT count(*) FROM woken) AS woken,
       (SELECT count(*) FROM settled) AS settled FROM taken
