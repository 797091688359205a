"""A large event log made in seconds: task lifecycle events written straight into the
``events`` table by one INSERT ... SELECT over a generated series (not through
``events.append``, which would take minutes for a million), on either backend.

    backlog.fill(database_url, 300_000)

Event n (1-based) is ``task.created``, ``task.started`` or ``task.succeeded`` (n mod 3)
of task ``t{n // 3}`` of agent ``agent-{task mod 50}``; the log's head is moved past
them, so readers (the router aside: they are not queued for it) see all of them.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import make_url

AGENTS = 50

_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n WHERE i < :end)
INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, created_at)
SELECT i, printf('%08x-0000-7000-8000-%012x', i, i),
       CASE i % 3 WHEN 1 THEN 'task.created' WHEN 2 THEN 'task.started'
                  ELSE 'task.succeeded' END,
       'queue',
       json_object('task_id', 't' || (i / 3), 'agent', 'agent-' || ((i / 3) % :agents),
                   'attempt', 1),
       2, 't' || (i / 3), strftime('%Y-%m-%d %H:%M:%f000', 'now')
FROM n
"""

_POSTGRES = """
INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, created_at)
SELECT i, lpad(to_hex(i), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
       CASE i %% 3 WHEN 1 THEN 'task.created' WHEN 2 THEN 'task.started'
                  ELSE 'task.succeeded' END,
       'queue',
       jsonb_build_object('task_id', 't' || (i / 3), 'agent', 'agent-' || ((i / 3) %% %(agents)s),
                          'attempt', 1),
       2, 't' || (i / 3), statement_timestamp()
FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS i
"""


def fill(url: str, count: int) -> None:
    """Write ``count`` events after those the log holds (an empty log: seq 1..count)."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path, url
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            [last] = db.execute("SELECT last_seq FROM event_log_head WHERE id = 1").fetchone()
            db.execute(_SQLITE, {"start": last + 1, "end": last + count, "agents": AGENTS})
            db.execute("UPDATE event_log_head SET last_seq = :n WHERE id = 1",
                       {"n": last + count})
            db.execute("COMMIT")
        finally:
            db.close()
        return
    libpq = "postgresql://" + url.split("://", 1)[1]
    with psycopg.connect(libpq) as conn:
        [last] = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone() or (0,)
        conn.execute(_POSTGRES, {"start": last + 1, "end": last + count,  # type: ignore[arg-type]
                                 "agents": AGENTS})
        conn.execute("SELECT setval('events_seq', %s)", (last + count,))
