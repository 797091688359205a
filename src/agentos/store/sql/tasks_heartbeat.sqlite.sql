-- extend the leases of a batch of running attempts; a superseded one is missing from
-- the answer, and each answer says whether cancellation was requested
-- (+status: the rows are found by id from the batch; an index on status would make the
-- plan read every running task once per batch item)
UPDATE tasks SET lease_expires_at = :lease, updated_at = :now
FROM (SELECT value ->> 'id' AS id, value ->> 'attempt' AS attempt FROM json_each(:batch)) AS d
WHERE tasks.id = d.id AND tasks.attempt = d.attempt AND +tasks.status = 'running'
RETURNING id, cancel_requested
