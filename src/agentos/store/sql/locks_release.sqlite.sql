-- release a lock nobody waits for: the holder's row, then the update (inside one
-- BEGIN IMMEDIATE transaction); no row unless the owner holds it with this token, its
-- lease is live and no waiter is queued (as locks_release.postgresql). SQLite's hand-over
-- frees a lock nobody was queued for with this same update
SELECT task_id, acquired_at, strftime('%Y-%m-%d %H:%M:%f000', 'now') AS now FROM locks
WHERE resource = :resource AND owner = :owner AND token = :token
  AND expires_at >= strftime('%Y-%m-%d %H:%M:%f000', 'now') AND NOT queued;
UPDATE locks SET owner = NULL, priority = NULL, acquired_at = NULL, expires_at = NULL,
                 metadata = NULL, task_id = NULL, agent = NULL, updated_at = :now
WHERE resource = :resource
