-- route_patterns made to hold the patterns of the triggers published now (route_likes),
-- in the write transaction of a change to what is published; on PostgreSQL the caller
-- holds the table's lock first (routes.refresh_patterns)
DELETE FROM route_patterns WHERE type_like NOT IN (/*include route_likes*/);
INSERT INTO route_patterns (type_like)
SELECT p.type_like FROM (/*include route_likes*/) AS p
WHERE p.type_like NOT IN (SELECT type_like FROM route_patterns);
