-- fragment (CTEs promoted, picked, taken, claimed), included by tasks_claim and
-- tasks_cycle: claim up to /*n*/ ready tasks, most urgent first, then oldest (the
-- claim-order index), skipping rows another claimer holds (FOR UPDATE SKIP LOCKED).
-- /*free*/: the includer's further condition on promoting or claiming any (or nothing)
promoted AS (
    -- scheduled tasks whose time has come become ready; this statement's snapshot
    -- predates them, so the caller claims again when it still has room
    UPDATE tasks SET status = 'pending', updated_at = statement_timestamp()
    WHERE id IN (SELECT id FROM tasks
                 WHERE status = 'scheduled' AND run_at <= statement_timestamp() /*free*/
                 ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), picked AS (
    -- capped is read per row, not through a join: a join's estimate (agent_versions is
    -- small and seldom analyzed) made the planner expect to read the whole backlog for
    -- a claim of a hundred or so, and sort every pending task instead of reading the
    -- claim-order index (5 ms a claim with 5,000 pending). A pending task's version
    -- exists: deleting an agent cancels its waiting tasks in the same transaction
    SELECT t.id, t.priority, t.seq,
           coalesce((SELECT jsonb_typeof(v.definition -> 'limits' -> 'concurrency')
                            = 'number'
                     FROM agent_versions v
                     WHERE v.name = t.agent AND v.version = t.agent_version), false) AS capped
    FROM tasks t
    WHERE t.status = 'pending' /*agents*/ /*free*/
        -- an agent held by a spent hard budget keeps its tasks waiting (not failed) until
        -- the hold lapses or is released, and a task that needs a capability switched
        -- off waits until it is on again (held_agents: budgets.py, capabilities.py)
        AND NOT EXISTS (SELECT 1 FROM held_agents h
                        WHERE h.agent = t.agent
                            AND (h.reason = 'budget'
                                 OR (h.reason = 'capability' AND h.ref = t.capability))
                            AND (h.until IS NULL OR h.until > statement_timestamp()))
    ORDER BY t.priority DESC, t.seq
    LIMIT /*n*/
    FOR UPDATE OF t SKIP LOCKED
), taken AS (
    -- an agent with limits.concurrency needs its running tasks counted under its
    -- claim lock: this statement takes only the rows before the first such one and
    -- leaves the rest to the caller
    SELECT p.seq FROM picked p
    WHERE NOT EXISTS (SELECT 1 FROM picked c
                      WHERE c.capped AND (c.priority, -c.seq) >= (p.priority, -p.seq))
), claimed AS (
    UPDATE tasks t SET status = 'running', attempt = t.attempt + 1, worker_id = :worker_id,
        lease_expires_at = statement_timestamp() + make_interval(secs => :lease_s),
        started_at = statement_timestamp(), updated_at = statement_timestamp()
    -- by primary key, whatever plan the estimates would favour
    WHERE t.seq = ANY(ARRAY(SELECT seq FROM taken))
    RETURNING /*columns*/
)
