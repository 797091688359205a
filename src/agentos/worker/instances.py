"""Worker instances: who is running, where, for which agents, and whether alive.

In-process workers (``agentos worker``) register themselves and beat every
``HEARTBEAT_INTERVAL``; a remote worker speaking the HTTP protocol is
registered by its claims and kept alive by its claims and task heartbeats
(``seen``), with ``pid`` 0 and ``concurrency`` 0 (not known). A busy remote worker
claims many times a second: a server writes its presence at most every
``PRESENCE_EVERY`` seconds (sooner when what it serves changed), and its running
tasks are counted when the workers are read, not taken from that row
(``store.agent_state.shown_workers``).
"""

from __future__ import annotations

import os
import socket
import time
import weakref
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, insert, select, update

from agentos import locks, paging
from agentos.store import Store
from agentos.store.agent_state import shown_workers
from agentos.store.columns import database_now, upsert, utcnow
from agentos.store.tables import workers as table

HEARTBEAT_INTERVAL = 5.0  # seconds between a worker's presence updates
ALIVE_WITHIN = 3 * HEARTBEAT_INTERVAL  # seconds of silence before a worker counts as gone
PRESENCE_EVERY = 1.0  # seconds: a remote worker's presence written at most this often
REMEMBERED = 10_000  # remote workers whose last presence write a server remembers
c = table.c

# per store: remote worker id -> (host, agents) and when this process last wrote them
_WRITTEN: weakref.WeakKeyDictionary[Store, dict[str, tuple[tuple[str, Any], float]]] = (
    weakref.WeakKeyDictionary())


async def register(store: Store, worker_id: str, agents: list[str] | None,
                   concurrency: int) -> None:
    async with store.write() as conn:
        now = await database_now(conn)
        await conn.execute(delete(table).where(c.id == worker_id))
        await conn.execute(insert(table).values(
            id=worker_id, host=socket.gethostname(), pid=os.getpid(), agents=agents,
            concurrency=concurrency, status="idle", running=0, started_at=now,
            last_heartbeat_at=now))


async def beat(store: Store, worker_id: str, running: int) -> None:
    async with store.write() as conn:
        await conn.execute(update(table).where(c.id == worker_id).values(
            running=running, status="busy" if running else "idle",
            last_heartbeat_at=utcnow()))


def _heard_now() -> dict[str, Any]:
    """Column values for a remote worker "heard from just now". Its running tasks, and
    busy or idle, are counted when the workers are read
    (``store.agent_state.shown_workers``): its row holds placeholders, not a count of
    every running task at each claim and heartbeat (``tasks.worker_id`` has no index);
    an in-process worker's row keeps what its beat wrote."""
    return {"last_heartbeat_at": utcnow(), "stopped_at": None,
            "status": case((c.pid == 0, "idle"), else_=c.status)}


async def seen(store: Store, worker_id: str, host: str, agents: list[str] | None) -> None:
    """A remote worker claimed: register it, or refresh it (one upsert), unless this
    process did so less than ``PRESENCE_EVERY`` seconds ago with the same host and
    agents."""
    written = _WRITTEN.setdefault(store, {})
    serves = (host, None if agents is None else tuple(agents))
    last = written.get(worker_id)
    at = time.monotonic()
    if last is not None and last[0] == serves and at - last[1] < PRESENCE_EVERY:
        return
    async with store.write() as conn:
        await conn.execute(upsert(conn, table).values(
            id=worker_id, host=host, pid=0, agents=agents, concurrency=0, started_at=utcnow(),
            last_heartbeat_at=utcnow(), running=0, status="idle"
        ).on_conflict_do_update(index_elements=[c.id],
                                set_={"host": host, "agents": agents, **_heard_now()}))
        store.nothing_changed(conn)  # presence, not a change: the claim itself is audited
    if len(written) >= REMEMBERED and worker_id not in written:
        written.clear()  # hostile worker ids cannot grow it: at worst a write each
    written[worker_id] = (serves, at)


async def touch(store: Store, worker_id: str) -> None:
    """A remote worker heartbeated a task: refresh it if it is registered."""
    async with store.write() as conn:
        await conn.execute(update(table).where(c.id == worker_id)
                           .values(**_heard_now()))
        store.nothing_changed(conn)


async def unloadable(store: Store, worker_id: str, errors: dict[str, str]) -> None:
    """Record the agents whose handler this worker cannot load, and why: it no longer
    claims their tasks (``explain`` reads it for the no-worker gate)."""
    async with store.write() as conn:
        await conn.execute(update(table).where(c.id == worker_id).values(unloadable=errors))


async def stopped(store: Store, worker_id: str) -> None:
    async with store.write() as conn:
        await conn.execute(update(table).where(c.id == worker_id).values(
            status="stopped", running=0, stopped_at=utcnow()))


async def list_all(store: Store, include_stopped: bool = False) -> list[dict[str, Any]]:
    """Every worker (but the stopped ones), by id."""
    return (await page(store, include_stopped, limit=None))[0]


async def page(store: Store, include_stopped: bool = False, after: str | None = None,
               limit: int | None = paging.DEFAULT_LIMIT) -> tuple[list[dict[str, Any]], str | None]:
    """Workers by id after ``after``, at most ``limit``; and the next page's cursor."""
    async with store.read() as conn:
        now: datetime = await database_now(conn)
        stmt = select(table) if include_stopped else select(table).where(c.status != "stopped")
        found, next_after = await paging.keyed(conn, stmt, c.id, after, limit)
        rows = await shown_workers(conn, [dict(r._mapping) for r in found])
    cutoff = now - timedelta(seconds=ALIVE_WITHIN)
    held = await locks.held_by_workers(store, [r["id"] for r in rows
                                               if r["status"] != "stopped"])
    return [{
        "id": r["id"], "host": r["host"], "pid": r["pid"], "agents": r["agents"],
        "concurrency": r["concurrency"], "running": r["running"],
        "status": r["status"] if r["status"] == "stopped" or r["last_heartbeat_at"] >= cutoff
        else "lost",
        "alive": r["status"] != "stopped" and r["last_heartbeat_at"] >= cutoff,
        "started_at": r["started_at"].isoformat(),
        "last_heartbeat_at": r["last_heartbeat_at"].isoformat(),
        "stopped_at": r["stopped_at"].isoformat() if r["stopped_at"] else None,
        "locks": held.get(r["id"], []),
        "unloadable": r["unloadable"] or {},
    } for r in rows], next_after
