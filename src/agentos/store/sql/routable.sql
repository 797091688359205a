-- fragment: a condition on an event row "e" being appended: whether a trigger published
-- now may match its type (route_patterns), so the event is queued for routing. An event
-- no trigger names when it is appended is routed to nobody there and then, never queued.
-- The queue's own task.* events only for patterns that name them (router.mismatch). A
-- superset of what routes (every published version, not only each agent's newest;
-- SQLite's LIKE ignores ASCII case): the router checks each queued event exactly
EXISTS (SELECT 1 FROM route_patterns l WHERE e.type LIKE l.type_like ESCAPE '\'
        AND (substr(e.type, 1, 5) <> 'task.' OR substr(l.type_like, 1, 5) = 'task.'))
