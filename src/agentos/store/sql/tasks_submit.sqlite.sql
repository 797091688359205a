-- one new task of a batch (executemany, positional: store/tasks.py sends each row as a
-- tuple in this order), its values worked out by the caller inside its BEGIN IMMEDIATE
-- transaction (SQLite's single writer: no other submit can take an idempotency key or
-- a seq meanwhile); its seq follows the table's highest, as SQLite would choose it
INSERT INTO tasks (seq, id, agent, agent_version, input, priority, status, attempt,
                   retry_base, max_retries, timeout_s, run_at, cancel_requested,
                   idempotency_key, correlation_id, causation_id, capability, type, metadata,
                   created_at, updated_at)
VALUES (:seq, :id, :agent, :agent_version, :input, :priority, :status, 0, 0, :max_retries,
        :timeout_s, :run_at, 0, :idempotency_key, :correlation_id, :causation_id,
        :capability, :type, :metadata, :now, :now)
