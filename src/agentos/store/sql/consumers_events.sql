-- a consumer's batch: the events after its cursor up to :settled whose type is LIKE
-- one of its patterns (/*types*/: the patterns' test, or TRUE for every type), in order
SELECT /*columns*/ FROM events
WHERE seq > :after AND seq <= :settled AND /*types*/
ORDER BY seq LIMIT :limit
