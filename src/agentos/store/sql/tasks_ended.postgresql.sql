-- fragment (CTEs d, done, ended), included by tasks_complete and tasks_cycle: end a batch
-- of attempts as succeeded; a row whose attempt is no longer the task's running one
-- (superseded: its lease lapsed) is left alone and missing from done
d AS (
    SELECT * FROM jsonb_to_recordset(CAST(:batch AS jsonb))
        AS d(id text, attempt int, output jsonb, tokens jsonb, cost float8)
), done AS (
    UPDATE tasks t SET status = 'succeeded', output = coalesce(d.output, '{}'), error = NULL,
        lease_expires_at = NULL, finished_at = statement_timestamp(),
        updated_at = statement_timestamp()
    FROM d WHERE t.id = d.id AND t.attempt = d.attempt AND t.status = 'running'
    RETURNING /*ended columns*/
), ended AS (
    UPDATE task_attempts a SET outcome = 'succeeded', ended_at = statement_timestamp(),
        duration_ms = extract(epoch FROM statement_timestamp() - a.started_at) * 1000,
        tokens = d.tokens, cost = d.cost
    FROM done JOIN d ON d.id = done.id
    WHERE a.task_id = done.id AND a.number = done.attempt
)
