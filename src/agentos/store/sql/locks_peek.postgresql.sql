-- a waiter's look at a lock, in autocommit: holder, token, lease, the database's now and
-- this owner's queue entry (its id, or NULL); no row for a lock never taken (as
-- locks_peek.sqlite)
SELECT owner, token, expires_at, statement_timestamp() AS now,
       (SELECT id FROM lock_waiters WHERE resource = :resource AND owner = :owner) AS waiter
FROM locks WHERE resource = :resource
