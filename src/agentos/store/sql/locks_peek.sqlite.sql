-- a waiter's look at a lock, outside any transaction: holder, token, lease, the
-- database's now and this owner's queue entry (its id, or NULL); no row for a lock never
-- taken (as locks_peek.postgresql)
SELECT owner, token, expires_at, strftime('%Y-%m-%d %H:%M:%f000', 'now') AS now,
       (SELECT id FROM lock_waiters WHERE resource = :resource AND owner = :owner) AS waiter
FROM locks WHERE resource = :resource
