"""What the locks look like now: one resource's holder and queue, the held and
awaited locks, and the locks each worker's running tasks hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentos import paging, resources
from agentos.store import Store


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _holder(row: Any, now: datetime) -> dict[str, Any] | None:
    if row.owner is None:
        return None
    return {"owner": row.owner, "token": row.token, "priority": row.priority,
            "acquired_at": _iso(row.acquired_at), "expires_at": _iso(row.expires_at),
            "lapsed": row.expires_at < now, "metadata": row.metadata,
            "task_id": row.task_id, "agent": row.agent}


def _queue(waiters: list[Any], now: datetime) -> list[dict[str, Any]]:
    live = [w for w in waiters if w.expires_at >= now]
    return [{"position": n, "owner": w.owner, "priority": w.priority,
             "queued_at": _iso(w.created_at), "expires_at": _iso(w.expires_at),
             "ttl_s": w.ttl_s, "task_id": w.task_id, "agent": w.agent}
            for n, w in enumerate(live, 1)]


async def get(store: Store, resource: str) -> dict[str, Any]:
    """The holder and the queue of one resource (free and empty if never locked)."""
    resources.check(resource)
    async with store.read() as conn:
        now = await store.locks.now(conn)
        row, waiters = await store.locks.get(conn, resource)
    return {"resource": resource, "type": resources.type_of(resource),
            "last_token": row.token if row else 0,
            "holder": _holder(row, now) if row else None, "queue": _queue(waiters, now)}


async def list_locks(store: Store, type: str | None = None) -> list[dict[str, Any]]:
    """Held locks and locks with waiters, by resource; ``type`` filters by prefix."""
    return (await page(store, type, limit=None))[0]


async def page(store: Store, type: str | None = None, after: str | None = None,
               limit: int | None = paging.DEFAULT_LIMIT
               ) -> tuple[list[dict[str, Any]], str | None]:
    """``list_locks`` by resource after ``after``, at most ``limit``; and the next
    page's cursor."""
    async with store.read() as conn:
        now = await store.locks.now(conn)
        fetched, waiters = await store.locks.listing(conn, type, after, paging.fetch(limit))
    rows, next_after = paging.cut(fetched, limit, lambda r: str(r.resource))
    by_resource: dict[str, list[Any]] = {}
    for w in waiters:
        by_resource.setdefault(w.resource, []).append(w)
    return [{"resource": r.resource, "type": r.type, "last_token": r.token,
             "holder": _holder(r, now), "queue": _queue(by_resource.get(r.resource, []), now)}
            for r in rows], next_after


async def held_by_workers(store: Store, worker_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """worker id -> the locks its running task attempts hold."""
    if not worker_ids:
        return {}
    async with store.read() as conn:
        rows = await store.locks.held_by_workers(conn, worker_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.worker_id, []).append({
            "resource": r.resource, "token": r.token, "task_id": r.task_id, "agent": r.agent,
            "expires_at": _iso(r.expires_at)})
    return out
