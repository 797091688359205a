-- join the queue of a lock another owner holds with a live lease, or stretch the place
-- this owner already has there (as locks_join.postgresql), inside one BEGIN IMMEDIATE
-- transaction: the holder and the database's now (no row when the lock is free, lapsed
-- or this owner's: the caller then takes the full path), this owner's entry stretched
-- (the entry outlives the wait by a slack), or else a new entry, the lock marked queued
-- (rule 2), and the entry's position (1 = next). The caller appends lock.queued for a
-- new entry.
SELECT owner, strftime('%Y-%m-%d %H:%M:%f000', 'now') AS now FROM locks
WHERE resource = :resource AND owner IS NOT NULL AND owner <> :owner
  AND expires_at >= strftime('%Y-%m-%d %H:%M:%f000', 'now');
UPDATE lock_waiters
SET expires_at = max(expires_at, strftime('%Y-%m-%d %H:%M:%f000', :now,
                                          printf('%+.6f seconds', :queue_s))),
    ttl_s = :ttl_s
WHERE resource = :resource AND owner = :owner
RETURNING id, priority;
INSERT INTO lock_waiters (resource, owner, priority, ttl_s, metadata, task_id, agent,
                          created_at, expires_at)
VALUES (:resource, :owner, :priority, :ttl_s, :metadata, :task_id, :agent, :now,
        strftime('%Y-%m-%d %H:%M:%f000', :now, printf('%+.6f seconds', :queue_s)))
RETURNING id, priority;
UPDATE locks SET queued = 1 WHERE resource = :resource AND NOT queued;
SELECT 1 + count(*) FROM lock_waiters
WHERE resource = :resource AND expires_at >= :now AND id <> :entry
  AND (priority > :w_priority OR (priority = :w_priority AND id < :entry))
