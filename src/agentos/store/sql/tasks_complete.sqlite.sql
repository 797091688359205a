-- end a batch of attempts as succeeded; a row whose attempt is no longer the task's
-- running one (superseded: its lease lapsed) is left alone and missing from the answer
-- (+status: the rows are found by id from the batch; an index on status would make the
-- plan read every running task once per batch item)
UPDATE tasks SET status = 'succeeded', output = coalesce(d.output, '{}'), error = NULL,
    lease_expires_at = NULL, finished_at = :now, updated_at = :now
FROM (SELECT value ->> 'id' AS id, value ->> 'attempt' AS attempt, value -> 'output' AS output
      FROM json_each(:batch)) AS d
WHERE tasks.id = d.id AND tasks.attempt = d.attempt AND +tasks.status = 'running'
RETURNING /*ended_columns*/;
-- the execution records of the ones that were current (the caller sends only those)
INSERT INTO task_attempts (task_id, number, worker_id, outcome, started_at, ended_at,
                           duration_ms, tokens, cost)
SELECT t.id, t.attempt, t.worker_id, 'succeeded', t.started_at, :now,
       (julianday(:now) - julianday(t.started_at)) * 86400000.0, d.tokens, d.cost
FROM (SELECT value ->> 'id' AS id, value ->> 'attempt' AS attempt, value -> 'tokens' AS tokens,
             value ->> 'cost' AS cost
      FROM json_each(:batch)) AS d
JOIN tasks t ON t.id = d.id AND t.attempt = d.attempt
