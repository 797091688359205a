-- claim up to :n ready tasks, inside the caller's BEGIN IMMEDIATE transaction (SQLite's
-- single writer: no other claimer can see or take these rows meanwhile)
-- 1. scheduled tasks whose time has come are ready
-- (the indexes are named: without statistics SQLite's planner takes any index on
-- status as selective, and (status, seq) made both steps read the whole backlog)
UPDATE tasks INDEXED BY ix_tasks_run_at SET status = 'pending', updated_at = :now
WHERE status = 'scheduled' AND run_at <= :now;
-- 2. the candidates in claim order (the claim-order index); the caller takes the rows
-- before the first one whose agent has limits.concurrency, and counts the rest
SELECT t.id, t.priority, t.seq,
       coalesce(json_type(v.definition, '$.limits.concurrency') IN ('integer', 'real'), 0)
           AS capped
FROM tasks AS t INDEXED BY /*claim_index*/ JOIN agent_versions v ON v.name = t.agent AND v.version = t.agent_version
WHERE t.status = 'pending' /*agents*/
    -- an agent held by a spent hard budget keeps its tasks waiting, and so does a task
    -- that needs a capability switched off (held_agents)
    AND NOT EXISTS (SELECT 1 FROM held_agents h
                    WHERE h.agent = t.agent
                        AND (h.reason = 'budget'
                             OR (h.reason = 'capability' AND h.ref = t.capability))
                        AND (h.until IS NULL OR h.until > :now))
ORDER BY t.priority DESC, t.seq
LIMIT :n;
-- 3. the chosen ones run (the attempt's execution record is written when it ends)
UPDATE tasks SET status = 'running', attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease, started_at = :now, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING /*columns*/
