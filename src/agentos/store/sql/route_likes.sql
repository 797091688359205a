-- fragment: the event types the triggers of published agent versions name, once each,
-- as LIKE patterns (escape '\'; '*' any run, '?' one character, '_' itself: the only
-- LIKE character a glob may hold): what route_patterns holds (route_patterns_refresh)
SELECT DISTINCT replace(replace(replace(t.event_glob, '_', '\_'), '*', '%'), '?', '_')
    AS type_like
FROM agent_triggers t JOIN agent_versions v ON v.id = t.agent_version_id
WHERE v.status = 'published'
