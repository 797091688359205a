-- a waiter's look at a lock, outside any transaction (autocommit on PostgreSQL): holder,
-- token, lease, the database's now and this owner's queue entry (its id, or NULL); no row
-- for a lock never taken
SELECT owner, token, expires_at, /*include now*/ AS now,
       (SELECT id FROM lock_waiters WHERE resource = :resource AND owner = :owner) AS waiter
FROM locks WHERE resource = :resource
