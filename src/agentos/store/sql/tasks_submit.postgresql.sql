-- submit a batch of tasks in one round trip: resolve each one's agent version (the
-- named one, or the highest published), insert the new ones, append their task.created
-- events and wake the workers. :items holds one object per task the caller did not already match to an
-- earlier one of the batch (same idempotency key), each with its new id and event id.
-- The events: task_events_inserted.
-- Nothing is written when any item names no published version: those items come back
-- with a null task. An item whose idempotency key an earlier task holds comes back with
-- that task (created false); one whose key a concurrent submit took meanwhile comes back
-- with neither (the caller reads it again) where /*on_conflict*/ skips it (within a
-- caller's transaction, which the caller's refusal rolls back whole); alone (autocommit)
-- the statement fails instead, writing nothing, and is sent again (it then sees the key
-- as an earlier task's). Nothing is written either when an item's
-- key an earlier task holds with other values (store/tasks.py rule 5: a field the item
-- leaves out matches what the server filled in): those items come back with the
-- earlier task and the names of the fields that differ (the caller answers 409).
-- /*audit*/: the request's audit row (store/audit.py's fragment: Store.folding), or nothing
WITH i AS (
    SELECT * FROM jsonb_to_recordset(CAST(:items AS jsonb))
        AS i(ord int, id text, event_id text, agent text, version text, input jsonb, priority int,
             max_retries int, timeout_s float8, run_at timestamptz, idempotency_key text,
             correlation_id text, causation_id text, capability text, type text,
             metadata jsonb)
), asked AS (
    -- each (agent, version) the batch names, looked up once however many tasks name it
    SELECT DISTINCT agent, version FROM i
), found AS MATERIALIZED (
    SELECT s.agent, s.version AS asked, r.name, r.version, r.definition -> 'limits' AS limits
    FROM asked s LEFT JOIN LATERAL (
        SELECT a.name, a.version, a.definition FROM agent_versions a
        WHERE a.name = s.agent AND a.status = 'published'
            AND (s.version IS NULL OR a.version = s.version)
        ORDER BY a.sort_key DESC LIMIT 1) r ON true
), v AS (
    -- (coalesce: an equality a hash join takes; no version is the empty string)
    SELECT i.ord, f.name, f.version, f.limits
    FROM i JOIN found f ON f.agent = i.agent AND coalesce(f.asked, '') = coalesce(i.version, '')
), earlier AS (
    SELECT t.* FROM tasks t
    WHERE t.idempotency_key IN (SELECT idempotency_key FROM i
                                WHERE idempotency_key IS NOT NULL)
), conflicting AS (
    SELECT i.ord, array_remove(ARRAY[
        CASE WHEN e.agent <> i.agent THEN 'agent' END,
        CASE WHEN e.agent_version <> i.version THEN 'version' END,
        CASE WHEN e.input <> i.input THEN 'input' END,
        CASE WHEN e.priority <> i.priority THEN 'priority' END,
        CASE WHEN e.max_retries <> i.max_retries THEN 'max_retries' END,
        CASE WHEN e.timeout_s <> i.timeout_s THEN 'timeout_s' END,
        CASE WHEN e.run_at <> i.run_at THEN 'run_at' END,
        CASE WHEN e.correlation_id <> i.correlation_id THEN 'correlation_id' END,
        CASE WHEN e.causation_id IS DISTINCT FROM i.causation_id THEN 'causation_id' END,
        CASE WHEN e.capability IS DISTINCT FROM i.capability THEN 'capability' END,
        CASE WHEN e.type IS DISTINCT FROM i.type THEN 'type' END,
        CASE WHEN e.metadata IS DISTINCT FROM i.metadata THEN 'metadata' END
    ], NULL) AS fields
    FROM i JOIN earlier e ON e.idempotency_key = i.idempotency_key
), unknown AS (
    -- items naming no published version (one whose key an earlier task holds needs none)
    SELECT i.ord FROM i JOIN v ON v.ord = i.ord
    WHERE v.name IS NULL
        AND NOT EXISTS (SELECT 1 FROM earlier e WHERE e.idempotency_key = i.idempotency_key)
), fresh AS (
    INSERT INTO tasks (id, agent, agent_version, input, priority, status, attempt, retry_base,
                       max_retries, timeout_s, run_at, cancel_requested, idempotency_key,
                       correlation_id, causation_id, capability, type, metadata, created_at,
                       updated_at)
    SELECT i.id, v.name, v.version, i.input, i.priority,
           CASE WHEN i.run_at > statement_timestamp() THEN 'scheduled' ELSE 'pending' END,
           0, 0, coalesce(i.max_retries, (v.limits ->> 'max_retries')::int, :max_retries),
           coalesce(i.timeout_s, (v.limits ->> 'timeout_s')::float8, :timeout_s),
           coalesce(i.run_at, statement_timestamp()), false, i.idempotency_key,
           coalesce(i.correlation_id, i.id), i.causation_id, i.capability, i.type,
           i.metadata, statement_timestamp(),
           statement_timestamp()
    FROM i JOIN v ON v.ord = i.ord
    WHERE NOT EXISTS (SELECT 1 FROM unknown)
        AND NOT EXISTS (SELECT 1 FROM conflicting WHERE fields <> '{}')
        AND NOT EXISTS (SELECT 1 FROM earlier e WHERE e.idempotency_key = i.idempotency_key)
    ORDER BY i.ord
    /*on_conflict*/
    RETURNING /*columns*/
), news AS (
    SELECT row_number() OVER (ORDER BY f.seq) AS ord, i.event_id, 'task.created' AS type,
           jsonb_build_object('task_id', f.id, 'agent', f.agent, 'priority', f.priority)
               AS payload, f.id, f.correlation_id
    FROM fresh f JOIN i ON i.id = f.id
), /*include task_events_inserted*/, woken AS (
    SELECT pg_notify('agentos_tasks', ''), pg_notify('agentos_events', '')
    FROM (SELECT 1 FROM inserted LIMIT 1) AS q
)
/*audit*/
SELECT r.*, (SELECT count(*) FROM woken) AS woken
FROM (SELECT i.ord, true AS created, NULL::text[] AS differs, /*f_columns*/
      FROM i JOIN fresh f ON f.id = i.id
      UNION ALL
      SELECT i.ord, false, nullif(c.fields, '{}'), /*e_columns*/ FROM i JOIN earlier e
          ON e.idempotency_key = i.idempotency_key JOIN conflicting c ON c.ord = i.ord
      UNION ALL
      SELECT ord, NULL, NULL, /*nulls*/ FROM unknown
     ) AS r
