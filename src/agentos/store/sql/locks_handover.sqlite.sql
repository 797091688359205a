-- release a lock and grant it to the best live waiter (priority, then arrival), or free
-- it when none is left (as locks_handover.postgresql), inside one BEGIN IMMEDIATE
-- transaction: the holder's row (none unless the owner holds the lock with this token
-- and its lease is live), the waiter's entry taken out of the queue (looked for only
-- when the row says one may be queued, rule 2), the grant or the free (queued says
-- again whether anyone waits), and a waiting task made due.
-- The caller appends lock.released and lock.acquired.
SELECT task_id, acquired_at, strftime('%Y-%m-%d %H:%M:%f000', 'now') AS now, queued
FROM locks
WHERE resource = :resource AND owner = :owner AND token = :token
  AND expires_at >= strftime('%Y-%m-%d %H:%M:%f000', 'now');
DELETE FROM lock_waiters WHERE id = (
    SELECT id FROM lock_waiters WHERE resource = :resource AND expires_at >= :now
    ORDER BY priority DESC, id LIMIT 1)
RETURNING id, owner, priority, ttl_s, metadata, task_id, agent, created_at;
UPDATE locks SET token = token + 1, owner = :w_owner, priority = :w_priority,
                 acquired_at = :now,
                 expires_at = strftime('%Y-%m-%d %H:%M:%f000', :now,
                                       printf('%+.6f seconds', :w_ttl_s)),
                 metadata = :w_metadata, task_id = :w_task_id, agent = :w_agent,
                 updated_at = :now,
                 queued = EXISTS (SELECT 1 FROM lock_waiters WHERE resource = :resource)
WHERE resource = :resource
RETURNING token, expires_at;
UPDATE locks SET owner = NULL, priority = NULL, acquired_at = NULL, expires_at = NULL,
                 metadata = NULL, task_id = NULL, agent = NULL, updated_at = :now,
                 queued = EXISTS (SELECT 1 FROM lock_waiters WHERE resource = :resource)
WHERE resource = :resource;
UPDATE tasks SET run_at = :now, updated_at = :now
WHERE id = :w_task_id AND status = 'scheduled'
