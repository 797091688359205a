-- release a lock nobody waits for in one round trip and append its lock.released event
-- (events_inserted). No row unless the owner holds it with this token, its lease is live
-- and no waiter is queued (locks.queued, re-checked on the row's newest version once it
-- is locked): the caller then takes the full path (the next waiter's grant, the error)
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH held AS (
    SELECT resource, task_id, acquired_at FROM locks
    WHERE resource = :resource AND owner = :owner AND token = :token
      AND expires_at >= statement_timestamp() AND NOT queued
    FOR UPDATE
), freed AS (
    UPDATE locks l SET owner = NULL, priority = NULL, acquired_at = NULL, expires_at = NULL,
                       metadata = NULL, task_id = NULL, agent = NULL,
                       updated_at = statement_timestamp()
    FROM held WHERE l.resource = held.resource
    RETURNING held.task_id, held.acquired_at
), news AS (
    /*include locks_released*/
), /*include events_inserted*/
/*audit*/
SELECT task_id, (SELECT count(*) FROM woken) AS woken FROM freed
