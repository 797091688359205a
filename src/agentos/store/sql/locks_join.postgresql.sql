-- join the queue of a lock another owner holds with a live lease (or stretch the place
-- this owner already has there: the entry outlives the wait by a slack), mark the lock
-- as queued and append lock.queued for a new entry (events_inserted); answers the
-- entry's position (1 = next) and id. Sent after a statement that locked the lock row in the
-- same transaction, so this one sees every entry that queued before. No row when the
-- lock is free, lapsed or this owner's: the caller then takes the full path.
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH l AS (
    SELECT owner FROM locks
    WHERE resource = :resource AND owner IS NOT NULL AND owner <> :owner
      AND expires_at >= statement_timestamp()
), mine AS (
    INSERT INTO lock_waiters AS w (resource, owner, priority, ttl_s, metadata, task_id, agent,
                                   created_at, expires_at)
    SELECT :resource, :owner, :priority, :ttl_s, :metadata::jsonb,
           :task_id::text, :agent, statement_timestamp(),
           statement_timestamp() + make_interval(secs => :queue_s)
    FROM l
    ON CONFLICT (resource, owner) DO UPDATE SET
        expires_at = greatest(w.expires_at, excluded.expires_at), ttl_s = excluded.ttl_s
    RETURNING id, priority, (xmax = 0) AS joined
), marked AS (
    UPDATE locks SET queued = true
    WHERE resource = :resource AND NOT queued AND EXISTS (SELECT 1 FROM mine)
    RETURNING 1
), placed AS (
    SELECT 1 + count(o.id) AS position
    FROM mine m LEFT JOIN lock_waiters o
        ON o.resource = :resource AND o.expires_at >= statement_timestamp() AND o.id <> m.id
       AND (o.priority > m.priority OR (o.priority = m.priority AND o.id < m.id))
    GROUP BY m.id
), news AS (
    SELECT 1 AS ord, jsonb_build_object(
        'id', :event_id::text, 'type', 'lock.queued', 'source', 'locks',
        'priority', :rank::int, 'correlation_id', :event_id::text,
        'causation_id', :task_id::text,
        'payload', :payload::jsonb
            || jsonb_build_object('position', p.position, 'holder', l.owner)) AS e
    FROM mine m, placed p, l WHERE m.joined
), /*include events_inserted*/
/*audit*/
SELECT p.position, m.id AS entry, m.joined, (SELECT count(*) FROM woken) AS woken,
       (SELECT count(*) FROM marked) AS marked
FROM mine m, placed p
