-- a worker's round trip as one statement (run in autocommit: one round trip in all):
-- end the attempts it finished as succeeded (fenced: only a task's running attempt
-- counts), claim up to :n ready tasks as tasks_claim does, and append the
-- task.succeeded and task.started events of both, numbered under the event log's
-- head row as events_append does. Used when no finished attempt may hold a lock;
-- when it leaves a claim short (a capped agent's task, or scheduled tasks it
-- promoted) the caller claims the rest in a transaction of its own.
WITH d AS (
    SELECT * FROM jsonb_to_recordset(CAST(:batch AS jsonb))
        AS d(id text, attempt int, output jsonb, tokens jsonb, cost float8)
), done AS (
    UPDATE tasks t SET status = 'succeeded', output = coalesce(d.output, '{}'), error = NULL,
        lease_expires_at = NULL, finished_at = statement_timestamp(),
        updated_at = statement_timestamp()
    FROM d WHERE t.id = d.id AND t.attempt = d.attempt AND t.status = 'running'
    RETURNING t.id, t.agent, t.attempt, t.correlation_id
), ended AS (
    UPDATE task_attempts a SET outcome = 'succeeded', ended_at = statement_timestamp(),
        duration_ms = extract(epoch FROM statement_timestamp() - a.started_at) * 1000,
        tokens = d.tokens, cost = d.cost
    FROM done JOIN d ON d.id = done.id
    WHERE a.task_id = done.id AND a.number = done.attempt
), promoted AS (
    UPDATE tasks SET status = 'pending', updated_at = statement_timestamp()
    WHERE id IN (SELECT id FROM tasks
                 WHERE status = 'scheduled' AND run_at <= statement_timestamp()
                 ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), picked AS (
    SELECT t.id, t.priority, t.seq,
           coalesce(jsonb_typeof(v.definition -> 'limits' -> 'concurrency') = 'number',
                    false) AS capped
    FROM tasks t JOIN agent_versions v ON v.name = t.agent AND v.version = t.agent_version
    WHERE t.status = 'pending' /*agents*/
    ORDER BY t.priority DESC, t.seq
    LIMIT /*n*/
    FOR UPDATE OF t SKIP LOCKED
), taken AS (
    SELECT p.id FROM picked p
    WHERE NOT EXISTS (SELECT 1 FROM picked c
                      WHERE c.capped AND (c.priority, -c.seq) >= (p.priority, -p.seq))
), claimed AS (
    UPDATE tasks t SET status = 'running', attempt = t.attempt + 1, worker_id = :worker_id,
        lease_expires_at = statement_timestamp() + make_interval(secs => :lease_s),
        updated_at = statement_timestamp()
    FROM taken WHERE t.id = taken.id
    RETURNING /*columns*/
), started AS (
    INSERT INTO task_attempts (task_id, number, worker_id, outcome, started_at)
    SELECT id, attempt, :worker_id, 'running', statement_timestamp() FROM claimed
), news AS (
    -- the events, in order: the ended attempts', then the claimed ones' in claim order
    SELECT row_number() OVER (ORDER BY x.k, x.priority DESC, x.seq, x.id) AS ord,
           count(*) OVER () AS total, x.*
    FROM (SELECT 0 AS k, 'task.succeeded' AS type, id, agent, attempt, correlation_id,
                 0 AS priority, 0 AS seq FROM done
          UNION ALL
          SELECT 1, 'task.started', id, agent, attempt, correlation_id, priority, seq
          FROM claimed) AS x
), head AS (
    UPDATE event_log_head SET last_seq = last_seq + (SELECT count(*) FROM news)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM news)
    RETURNING last_seq
), inserted AS (
    INSERT INTO events (seq, id, type, source, payload, priority, correlation_id,
                        causation_id, created_at)
    SELECT head.last_seq - n.total + n.ord, CAST(:event_ids AS jsonb) ->> (n.ord - 1)::int,
           n.type, 'queue',
           CASE WHEN n.k = 1
                THEN jsonb_build_object('task_id', n.id, 'agent', n.agent,
                                        'attempt', n.attempt,
                                        'worker_id', CAST(:worker_id AS text))
                ELSE jsonb_build_object('task_id', n.id, 'agent', n.agent,
                                        'attempt', n.attempt) END,
           CAST(:event_rank AS smallint), n.correlation_id, n.id, statement_timestamp()
    FROM news n, head
    RETURNING seq, priority
), queued AS (
    INSERT INTO route_queue (seq, rank) SELECT seq, priority FROM inserted RETURNING seq
)
SELECT c.*, k.promoted, k.capped, k.done, k.notified
FROM (SELECT (SELECT count(*) FROM promoted) AS promoted,
             (SELECT count(*) FROM picked WHERE capped) AS capped,
             (SELECT coalesce(jsonb_agg(jsonb_build_array(id, attempt)), '[]') FROM done)
                 AS done,
             (SELECT count(*) FROM (SELECT pg_notify('agentos_events', '')
                                    FROM (SELECT 1 FROM queued LIMIT 1) AS q) AS n)
                 AS notified) AS k
LEFT JOIN claimed c ON true
