-- fragment (CTE logged), filled into tasks_cycle when a round trip carries log lines: the
-- lines its worker buffered for the attempts it ends and those still running
-- (task_logs.py); sent again after a lost answer, they are already there
logged AS (
    INSERT INTO task_logs (task_id, attempt, line, at, level, message)
    SELECT l.task_id, l.attempt, l.line, l.at, l.level, l.message
    FROM jsonb_to_recordset(CAST(:logs AS jsonb))
        AS l(task_id text, attempt int, line int, at timestamptz, level text, message text)
    ON CONFLICT DO NOTHING
)
