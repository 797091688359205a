-- insert a batch of new tasks, their values worked out by the caller inside its BEGIN
-- IMMEDIATE transaction (SQLite's single writer: no other submit can take an
-- idempotency key meanwhile); the rows come back whole, in no particular order
INSERT INTO tasks (id, agent, agent_version, input, priority, status, attempt, retry_base,
                   max_retries, timeout_s, run_at, cancel_requested, idempotency_key,
                   correlation_id, causation_id, capability, type, metadata, created_at,
                   updated_at)
SELECT value ->> 'id', value ->> 'agent', value ->> 'agent_version', value -> 'input',
       value ->> 'priority', value ->> 'status', 0, 0, value ->> 'max_retries',
       value ->> 'timeout_s', value ->> 'run_at', 0, value ->> 'idempotency_key',
       value ->> 'correlation_id', value ->> 'causation_id', value ->> 'capability',
       value ->> 'type', nullif(value -> 'metadata', 'null'), :now, :now
FROM json_each(:rows)
RETURNING /*columns*/
