-- of :owners (an array), those that hold a lock or wait in a lock's queue, outside any
-- transaction: a remote worker's completions, of which only these end where locks are
-- given back (both through the owner indexes)
SELECT owner FROM locks WHERE owner = ANY(:owners)
UNION
SELECT owner FROM lock_waiters WHERE owner = ANY(:owners)
