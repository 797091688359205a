-- extend the leases of a batch of running attempts; a superseded one is missing from
-- the answer, and each answer says whether cancellation was requested
UPDATE tasks t SET lease_expires_at = statement_timestamp() + make_interval(secs => :lease_s),
    updated_at = statement_timestamp()
FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS d(id text, attempt int)
WHERE t.id = d.id AND t.attempt = d.attempt AND t.status = 'running'
RETURNING t.id, t.cancel_requested
