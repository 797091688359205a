-- claim up to /*n*/ ready tasks in one round trip (tasks_taken); one row even when none
-- is claimed, with how many scheduled tasks it promoted and capped agents' tasks it met
WITH /*include tasks_taken*/
SELECT c.*, k.promoted, k.capped
FROM (SELECT (SELECT count(*) FROM promoted) AS promoted,
             (SELECT count(*) FROM picked WHERE capped) AS capped) AS k
LEFT JOIN claimed c ON true
