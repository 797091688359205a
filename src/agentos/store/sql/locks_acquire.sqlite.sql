-- take a lock that is free (or new); no row when it is held, lapsed or not, or when a
-- task's claim names an attempt that is no longer running (as locks_acquire.postgresql);
-- then, once taken, its new holder out of its queue (as there)
INSERT INTO locks (resource, type, token, owner, priority, acquired_at, expires_at,
                   metadata, task_id, agent, updated_at)
SELECT :resource, :type, 1, :owner, :priority, strftime('%Y-%m-%d %H:%M:%f000', 'now'),
       strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('%+.6f seconds', :ttl_s)), :metadata,
       :task_id, :agent, strftime('%Y-%m-%d %H:%M:%f000', 'now')
WHERE :attempt IS NULL OR EXISTS (
    SELECT 1 FROM tasks t WHERE t.id = :task_id AND t.status = 'running' AND t.attempt = :attempt)
ON CONFLICT (resource) DO UPDATE SET
    token = token + 1, owner = excluded.owner, priority = excluded.priority,
    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at,
    metadata = excluded.metadata, task_id = excluded.task_id, agent = excluded.agent,
    updated_at = excluded.updated_at
WHERE owner IS NULL
RETURNING token, expires_at;
DELETE FROM lock_waiters WHERE resource = :resource AND owner = :owner
