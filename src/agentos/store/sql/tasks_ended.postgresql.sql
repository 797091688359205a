-- fragment (CTEs d, done, ended), included by tasks_complete and tasks_cycle: end a batch
-- of attempts as succeeded and write their execution records; a row whose attempt is no
-- longer the task's running one (superseded: its lease lapsed) is left alone and
-- missing from done. The rows are
-- found through the unique id index (id = ANY(:ids)): a join the planner may choose
-- would scan every running task on each round trip. /*unless*/: the includer's further
-- condition on ending any of them (or nothing)
d AS (
    SELECT * FROM jsonb_to_recordset(CAST(:batch AS jsonb))
        AS d(id text, attempt int, output jsonb, tokens jsonb, cost float8)
), done AS (
    UPDATE tasks t SET status = 'succeeded', output = coalesce(d.output, '{}'), error = NULL,
        lease_expires_at = NULL, finished_at = statement_timestamp(),
        updated_at = statement_timestamp()
    FROM d
    WHERE t.id = ANY(CAST(:ids AS text[])) AND t.id = d.id AND t.attempt = d.attempt
        AND t.status = 'running' /*unless*/
    RETURNING /*ended_columns*/
), ended AS (
    INSERT INTO task_attempts (task_id, number, worker_id, outcome, started_at, ended_at,
                               duration_ms, tokens, cost)
    SELECT done.id, done.attempt, done.worker_id, 'succeeded', done.started_at,
           done.finished_at, extract(epoch FROM done.finished_at - done.started_at) * 1000,
           d.tokens, d.cost
    FROM done JOIN d ON d.id = done.id
)
