-- of :owners (a JSON array), those that hold a lock or wait in a lock's queue, as one
-- JSON array in one row: a remote worker's completions, of which only these end where
-- locks are given back (its one-step round trip, tasks.py; PostgreSQL's is in
-- tasks_cycle)
SELECT json_group_array(owner) FROM (
    SELECT owner FROM locks WHERE owner IN (SELECT value FROM json_each(:owners))
    UNION
    SELECT owner FROM lock_waiters WHERE owner IN (SELECT value FROM json_each(:owners)))
