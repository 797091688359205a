-- fragment: the lock.released event, as the first row (ord 1) of the including statement's
-- news, of the lock freed in CTE "freed" (task_id, acquired_at: the holder's), with the
-- parameters event_id, rank and payload (the rest of its payload, from the caller)
SELECT 1 AS ord, jsonb_build_object(
    'id', :event_id::text, 'type', 'lock.released', 'source', 'locks',
    'priority', :rank::int, 'correlation_id', :event_id::text,
    'causation_id', f.task_id,
    'payload', :payload::jsonb
        || jsonb_strip_nulls(jsonb_build_object('task_id', f.task_id))
        || jsonb_build_object('held_ms', round(
            (extract(epoch FROM statement_timestamp() - f.acquired_at) * 1000)::numeric,
            1))) AS e
FROM freed f
