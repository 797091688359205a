"""The audit log (SPEC §2.11): who changed what, when, from where; append-only, hash-chained.

Each row's ``hash`` is ``sha256(prev_hash ":" seq ":" body)``, ``body`` being
the row's other columns as canonical JSON, and ``prev_hash`` is the hash of the
row before (``GENESIS`` for the first). Rows are numbered and chained under
the one ``audit_head`` row, locked until commit, so concurrent writers (two
servers on PostgreSQL) queue there and the chain never forks; ``verify``
walks it and names the first broken link. The database refuses UPDATE and
DELETE on the table (a trigger), and the chain shows any change made anyway.

A request's audit row rides in the request's own write transaction: the API
calls ``expect(entry)`` once it knows who is asking, and the store's
before-commit hook (``flush``) appends that row as the last step of the first
write transaction the request commits (on PostgreSQL a hot write's one statement
may write it itself: ``flush_on_driver``, ``Store.folding``). A change that rolls
back leaves no row; a refusal is recorded on its own with ``record``.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import Store
from agentos.store import audit as store_audit
from agentos.store.base import UNCHANGED, DriverWork
from agentos.store.tables import audit_head, audit_log

GENESIS = "0" * 64
MAX_PAGE = 1000
VERIFY_PAGE = 1000  # rows read per query while verifying
MAX_RESOURCE_ID = 255  # the column's width
MAX_NAMED = 100  # ids a batch's row lists in its details
log_ = audit_log.c


class Outcome(StrEnum):
    OK = "ok"  # the change was made
    DENIED = "denied"  # refused: the caller's role does not allow it


@dataclass
class Entry:
    """One audit row before it is chained."""

    actor: str  # user:NAME, key:PREFIX or anonymous
    action: str  # <resource>.<verb>, e.g. tasks.cancel
    resource_type: str
    resource_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor_role: str | None = None
    outcome: Outcome = Outcome.OK
    ip: str | None = None
    user_agent: str | None = None


def body(at: datetime, entry: Entry) -> str:
    """The hashed text of a row: every column but seq and the hashes, canonically."""
    return json.dumps([at.astimezone(UTC).isoformat(), entry.actor, entry.actor_role,
                       entry.action, str(entry.outcome), entry.resource_type,
                       entry.resource_id, entry.details, entry.ip, entry.user_agent],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def link(prev_hash: str, seq: int, text: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{seq}:{text}".encode()).hexdigest()


# ----------------------------------------------------------------- append


async def append_in(conn: AsyncConnection, entry: Entry) -> int:
    """Chain ``entry`` within the caller's write transaction (as its last step)."""
    at, row, text = _columns(entry)
    return await store_audit.append(conn, at, row, entry.details, text,
                                    lambda prev, seq: link(prev, seq, text))


def _columns(entry: Entry) -> tuple[datetime, dict[str, Any], str]:
    at = datetime.now(UTC)
    row = {"actor": entry.actor, "actor_role": entry.actor_role, "action": entry.action,
           "outcome": str(entry.outcome), "resource_type": entry.resource_type,
           "resource_id": entry.resource_id, "ip": entry.ip, "user_agent": entry.user_agent}
    return at, row, body(at, entry)


async def record(store: Store, entry: Entry) -> int:
    """Append ``entry`` in a transaction of its own (a refusal: nothing else changes)."""
    async with store.write() as conn:
        return await append_in(conn, entry)


# ---------------------------------------------------- the request's entry


@dataclass
class _Scope:
    pending: Entry | None = None


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("agentos_audit",
                                                                       default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """Bound one request: what it ``expect``s is recorded by its first commit, or dropped."""
    token = _scope.set(_Scope())
    try:
        yield
    finally:
        _scope.reset(token)


def expect(entry: Entry) -> None:
    """Record ``entry`` with the first write transaction this request commits."""
    scope = _scope.get()
    if scope is not None:
        scope.pending = entry


def pending() -> Entry | None:
    """The entry the current request will record, to amend (e.g. a login's actor)."""
    scope = _scope.get()
    return scope.pending if scope is not None else None


def names(resource_ids: Sequence[str]) -> None:
    """Name what the request's change made, on its audit row, once the change knows
    (within its transaction: a task's id, an agent's name@version, a key's id). One id
    is the row's ``resource_id``; several are listed in its details (``ids``, the first
    ``MAX_NAMED``) and the ``resource_id`` holds as many as fit, then ``+N``."""
    entry = pending()
    if entry is None or not resource_ids:
        return
    entry.resource_id = _fit(resource_ids)
    if len(resource_ids) > 1:
        entry.details["ids"] = list(resource_ids[:MAX_NAMED])
        entry.details["count"] = len(resource_ids)


def _fit(resource_ids: Sequence[str]) -> str:
    text = resource_ids[0][:MAX_RESOURCE_ID]
    for shown, one in enumerate(resource_ids[1:], start=1):
        rest = f",+{len(resource_ids) - shown}"
        if len(text) + 1 + len(one) + len(rest) > MAX_RESOURCE_ID:
            return text + rest
        text += "," + one
    return text


async def record_pending(store: Store) -> None:
    """Record the request's pending entry now, in a transaction of its own."""
    async with store.write():
        pass  # the before-commit hook appends it


async def flush(conn: AsyncConnection) -> None:
    """The store's before-commit hook: append the request's pending entry, once."""
    scope = _scope.get()
    if scope is None or scope.pending is None or conn.info.get(UNCHANGED):
        return  # (an unchanged transaction leaves the entry for the request's next one)
    entry, scope.pending = scope.pending, None
    await append_in(conn, entry)


def flush_on_driver() -> DriverWork | None:
    """``flush``'s form for the store's driver blocks (``Store.driver(hooked=True)``,
    each a write that changes something): the request's pending entry, taken as the
    block's last step or by its statement (named by the block by then), and given back
    if that statement wrote nothing; None when no entry is pending."""
    scope = _scope.get()
    if scope is None or scope.pending is None:
        return None
    taken: list[Entry] = []

    def take() -> store_audit.Pending | None:
        entry, scope.pending = scope.pending, None
        if entry is None:
            return None
        taken.append(entry)
        at, row, text = _columns(entry)
        return at, row, entry.details, text, lambda prev, seq: link(prev, seq, text)

    def give_back() -> None:
        if taken and scope.pending is None:
            scope.pending = taken.pop()

    return store_audit.OnDriver(take, give_back)


# ------------------------------------------------------------------ reads


@dataclass(frozen=True)
class Query:
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None
    limit: int = 100


def to_dict(row: Any) -> dict[str, Any]:
    return {"seq": row.seq, "at": row.at.isoformat(), "actor": row.actor,
            "actor_role": row.actor_role, "action": row.action, "outcome": row.outcome,
            "resource_type": row.resource_type, "resource_id": row.resource_id,
            "details": row.details, "ip": row.ip, "user_agent": row.user_agent,
            "prev_hash": row.prev_hash, "hash": row.hash}


async def query(store: Store, q: Query) -> tuple[list[dict[str, Any]], int | None]:
    """Rows newest first; page with ``before_seq`` = the previous ``next_before_seq``."""
    stmt = select(audit_log).order_by(log_.seq.desc()).limit(q.limit + 1)
    for column, value in ((log_.actor, q.actor), (log_.action, q.action),
                          (log_.resource_type, q.resource_type),
                          (log_.resource_id, q.resource_id),
                          (log_.outcome, str(q.outcome) if q.outcome else None)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.since is not None:
        stmt = stmt.where(log_.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(log_.at < q.until)
    if q.before_seq is not None:
        stmt = stmt.where(log_.seq < q.before_seq)
    async with store.read() as conn:
        rows = (await conn.execute(stmt)).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return [to_dict(r) for r in rows], (rows[-1].seq if more else None)


@dataclass(frozen=True)
class Verdict:
    intact: bool
    checked: int  # rows verified
    head_seq: int
    head_hash: str  # record it elsewhere: a rewrite of the whole chain changes it
    broken_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"intact": self.intact, "checked": self.checked, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "broken_seq": self.broken_seq,
                "reason": self.reason}


async def verify(store: Store) -> Verdict:
    """Walk the chain from the first row; the first broken link, or intact."""
    async with store.read() as conn:
        head_seq, head_hash = (await conn.execute(
            select(audit_head.c.last_seq, audit_head.c.last_hash)
            .where(audit_head.c.id == 1))).one()
    expected_seq, prev, checked = 1, GENESIS, 0

    def broken(seq: int, reason: str) -> Verdict:
        return Verdict(False, checked, head_seq, head_hash, seq, reason)

    while True:
        async with store.read() as conn:
            rows = (await conn.execute(
                select(audit_log).where(log_.seq >= expected_seq).order_by(log_.seq)
                .limit(VERIFY_PAGE))).all()
        for row in rows:
            if row.seq != expected_seq:
                return broken(expected_seq, f"row {expected_seq} is missing")
            if row.prev_hash != prev:
                return broken(row.seq, "prev_hash does not match the row before")
            entry = Entry(row.actor, row.action, row.resource_type, row.resource_id,
                          row.details, row.actor_role, Outcome(row.outcome), row.ip,
                          row.user_agent)
            if link(prev, row.seq, body(row.at, entry)) != row.hash:
                return broken(row.seq, "the row's content does not match its hash")
            prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
        if len(rows) < VERIFY_PAGE:
            break
    if expected_seq - 1 != head_seq or prev != head_hash:
        return broken(expected_seq, f"the chain ends at {expected_seq - 1}, "
                                    f"the head says {head_seq}")
    return Verdict(True, checked, head_seq, head_hash)
