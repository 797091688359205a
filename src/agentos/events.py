"""The event log (SPEC §2.2): append, read, query, correlation trees, pruning.

The log is append-only and gapless in visibility: a reader paging by
``after_seq`` never skips an event that commits later with a smaller number.
On SQLite ``append`` numbers events under the single ``event_log_head`` row,
in the database's one write transaction. On PostgreSQL appenders take numbers
from a sequence without waiting for one another, so they may commit out of
order: each marks itself in flight (an advisory lock keyed by the lowest number
it can get, held until its transaction ends) and every read by sequence number
stops at ``horizon``, below the lowest mark. Append events as the last step of a
transaction: until it ends, readers wait for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, patterns
from agentos import ids as ids_
from agentos.errors import InvalidInput, NotFound, PayloadTooLarge
from agentos.store import Store
from agentos.store import workflows as store_workflows
from agentos.store.columns import NotJson, json_dumps
from agentos.store.events import CHANNEL, Draft, Priority, PriorityName

__all__ = ["CHANNEL", "Appended", "Draft", "Event", "EventIn", "Priority", "PriorityName",
           "Query", "append", "append_in", "correlation", "get", "head_seq", "prune",
           "query", "read_after"]
DEFAULT_MAX_PAYLOAD = 1024 * 1024  # bytes of JSON
MAX_BATCH = 10_000
MAX_PAGE = 1000


Id = Annotated[str, Field(min_length=1, max_length=64)]


class EventIn(BaseModel):
    """An event to append, as a producer sends it."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(max_length=255, pattern=patterns.EVENT_TYPE.pattern)]
    source: Annotated[str, Field(min_length=1, max_length=255)] = "api"
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityName = "normal"
    correlation_id: Id | None = None
    causation_id: Id | None = None
    run_id: Id | None = None
    subject: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    dedup_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs an event, on every read
class Event:
    seq: int
    id: str
    type: str
    source: str
    payload: dict[str, Any]
    priority: Priority
    correlation_id: str
    causation_id: str | None
    run_id: str | None
    subject: str | None
    dedup_key: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(row.seq, row.id, row.type, row.source, row.payload, Priority(row.priority),
                   row.correlation_id, row.causation_id, row.run_id, row.subject,
                   row.dedup_key, row.created_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "id": self.id, "type": self.type, "source": self.source,
            "payload": self.payload, "priority": _NAME[self.priority],
            "correlation_id": self.correlation_id, "causation_id": self.causation_id,
            "run_id": self.run_id, "subject": self.subject, "dedup_key": self.dedup_key,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(slots=True)
class Appended:
    event: Event
    duplicate: bool  # True: the dedup key was seen before; this is the first event


# ------------------------------------------------------------------ append


def encode_payloads(drafts: list[EventIn], max_bytes: int) -> list[str]:
    """Each draft's payload as stored (compact JSON), refusing one over ``max_bytes``."""
    out = []
    for draft in drafts:
        text = dump_json(draft.payload)
        size = len(text) if text.isascii() else len(text.encode())
        if size > max_bytes:
            raise PayloadTooLarge(
                f"the payload of a {draft.type} event is {size} bytes, over the cap of "
                f"{max_bytes}", details={"size": size, "max_bytes": max_bytes})
        out.append(text)
    return out


async def append(store: Store, drafts: list[EventIn],
                 max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[Appended]:
    """Append events in one transaction; all or none."""
    if not drafts:
        return []
    if len(drafts) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} events per batch", code="batch_too_large")
    payloads = encode_payloads(drafts, max_payload)  # before the write lock is taken
    if not any(d.dedup_key for d in drafts):  # nothing to look up: the driver's one block
        now = datetime.now(UTC)
        ids = ids_.uuid7_many(len(drafts))
        seqs = await store.events.append(drafts, payloads, ids, now, named=audit.names)
        if seqs is not None:
            return [Appended(e, False) for e in _made(drafts, seqs, ids, now)]
    async with store.write() as conn:
        appended = await append_in(store, conn, drafts, payloads)
        audit.names([a.event.id for a in appended])
        return appended


async def append_in(store: Store, conn: AsyncConnection, drafts: Sequence[EventIn | Draft],
                    payloads: list[str] | None = None) -> list[Appended]:
    """Append within the caller's write transaction (as its last step).

    ``payloads`` are the drafts' payloads already encoded (``encode_payloads``).
    """
    if payloads is None:
        payloads = [dump_json(d.payload) for d in drafts]
    keys = [d.dedup_key for d in drafts if d.dedup_key]
    earlier: dict[str, Event] = {}
    if keys:
        rows = await store.events.by_dedup_keys(conn, keys)
        earlier = {r.dedup_key: Event.from_row(r) for r in rows}
    # each draft is either earlier[key], or fresh[n] (a repeated key in this
    # batch points at its first draft, marked as a duplicate)
    fresh: list[EventIn | Draft] = []
    fresh_payloads: list[str] = []
    plan: list[tuple[Event | None, int, bool]] = []
    first_of_key: dict[str, int] = {}
    for draft, payload in zip(drafts, payloads, strict=True):
        key = draft.dedup_key
        if key is not None and key in earlier:
            plan.append((earlier[key], -1, True))
        elif key is not None and key in first_of_key:
            plan.append((None, first_of_key[key], True))
        else:
            if key is not None:
                first_of_key[key] = len(fresh)
            plan.append((None, len(fresh), False))
            fresh.append(draft)
            fresh_payloads.append(payload)
    made = await _insert(store, conn, fresh, fresh_payloads) if fresh else []
    return [Appended(found or made[n], dup) for found, n, dup in plan]


async def _insert(store: Store, conn: AsyncConnection, fresh: list[EventIn | Draft],
                  payloads: list[str]) -> list[Event]:
    now = datetime.now(UTC)
    ids = ids_.uuid7_many(len(fresh))
    seqs = await store.events.insert(conn, fresh, payloads, ids, now)
    return _made(fresh, seqs, ids, now)


def _made(fresh: Sequence[EventIn | Draft], seqs: list[int], ids: list[str], now: datetime
          ) -> list[Event]:
    return [Event(seq, i, d.type, d.source, d.payload, _PRIORITY[d.priority],
                  d.correlation_id or i, d.causation_id, d.run_id, d.subject, d.dedup_key, now)
            for seq, d, i in zip(seqs, fresh, ids, strict=True)]


_PRIORITY = {p.name.lower(): p for p in Priority}
_NAME = {p: p.name.lower() for p in Priority}


def dump_json(value: Any) -> str:
    """Compact JSON text, as stored and as sent: the store's one encoding, held to what
    the API takes (no integer over 64 bits, no NaN or Infinity, which orjson alone would
    store as null)."""
    try:
        return json_dumps(value, wide_integers=False)
    except (TypeError, NotJson) as exc:  # orjson.JSONEncodeError: e.g. an int over 64 bits
        raise InvalidInput(f"cannot store as JSON: {exc}", code="bad_payload") from None


# ------------------------------------------------------------------- reads


async def head_seq(store: Store) -> int:
    """The sequence number up to which the log is settled (0 for an empty log): no
    event with a number at or below it can still commit."""
    async with store.read() as conn:
        return await store.events.horizon(conn)


def _like(glob: str) -> str:
    patterns.check_event_glob(glob)
    return patterns.to_like(glob)


async def read_after(store: Store, conn: AsyncConnection, after_seq: int, limit: int,
                     type_glob: str | None = None) -> list[Event]:
    """Events with ``seq > after_seq`` in order, at most ``limit``, up to the horizon
    (a tailer never skips one that commits later with a smaller number)."""
    like = _like(type_glob) if type_glob is not None and type_glob != "*" else None
    return [Event.from_row(r) for r in await store.events.after(conn, after_seq, limit, like)]


async def get(store: Store, event_id: str) -> Event:
    async with store.read() as conn:
        row = await store.events.get(conn, event_id)
    if row is None:
        raise NotFound(f"no event with id {event_id}", code="event_not_found")
    return Event.from_row(row)


@dataclass(frozen=True)
class Query:
    """Filters for ``query``; every given one must hold."""

    type: str | None = None  # glob
    source: str | None = None
    correlation_id: str | None = None
    run_id: str | None = None
    priority: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    limit: int = 100
    newest_first: bool = False  # from the newest down (below ``before_seq`` when given)
    before_seq: int | None = None


async def query(store: Store, q: Query) -> tuple[list[Event], int | None]:
    """A page of events in sequence order and the ``after_seq`` of the next page; or,
    ``newest_first``, from the newest down and the ``before_seq`` of the next page."""
    if not 1 <= q.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    if q.after_seq < 0 or (q.before_seq is not None and q.before_seq < 1):
        raise InvalidInput("after_seq must be >= 0 and before_seq >= 1", code="bad_cursor")
    like = _like(q.type) if q.type else None
    rank = int(Priority.parse(q.priority)) if q.priority else None
    async with store.read() as conn:
        rows = await store.events.page(
            conn, after_seq=q.after_seq, limit=q.limit + 1, type_like=like,
            source=q.source or None, correlation_id=q.correlation_id or None,
            run_id=q.run_id or None, rank=rank, since=q.since, until=q.until,
            before_seq=q.before_seq, newest_first=q.newest_first)
    page = [Event.from_row(r) for r in rows[: q.limit]]
    return page, (page[-1].seq if len(rows) > q.limit else None)


async def correlation(store: Store, correlation_id: str) -> list[dict[str, Any]]:
    """Every event and task sharing ``correlation_id`` as a causation tree: each node
    (``kind`` event or task) has its ``children``, the things it caused, in time order.
    A task sits under the event that caused it; its lifecycle events and the events
    its handler emitted sit under the task."""
    async with store.read() as conn:
        rows, task_rows = await store.events.of_correlation(conn, correlation_id)
        run_rows = await store_workflows.runs_of_correlation(conn, correlation_id)
    if not rows and not task_rows:
        raise NotFound(f"no events with correlation id {correlation_id}",
                       code="correlation_not_found")
    nodes = [{**Event.from_row(r).to_dict(), "kind": "event"} for r in rows]
    nodes += [{"kind": "task", "id": t.id, "causation_id": t.causation_id, "agent": t.agent,
               "version": t.agent_version, "status": t.status, "attempt": t.attempt,
               "created_at": t.created_at.isoformat()} for t in task_rows]
    # a workflow run holds its steps' tasks and its events; a sub-run sits in its parent
    nodes += [{"kind": "run", "id": r.id, "causation_id": r.parent_run_id,
               "workflow": r.workflow, "version": r.version, "status": r.status,
               "created_at": r.created_at.isoformat()} for r in run_rows]
    nodes.sort(key=lambda n: str(n["created_at"]))  # stable: events keep their seq order
    return causation_tree(nodes)


def causation_tree(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest nodes (dicts with ``id`` and ``causation_id``) under their causes; a node
    whose cause is not among them is a root. Keeps the given order."""
    by_id = {n["id"]: {**n, "children": []} for n in nodes}
    roots = []
    for node in by_id.values():
        parent = by_id.get(node["causation_id"]) if node["causation_id"] else None
        if parent is not None and parent is not node:
            parent["children"].append(node)
        else:
            roots.append(node)
    return roots


# --------------------------------------------------------------- retention


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w' as a timedelta."""
    unit = text[-1:].lower()
    number = text[:-1]
    if unit not in _UNITS or not number.isdigit() or int(number) <= 0:
        raise InvalidInput(f"{text!r} is not an age like 30d, 12h, 90m or 2w", code="bad_age")
    return timedelta(seconds=int(number) * _UNITS[unit])


@dataclass(frozen=True)
class Pruned:
    deleted: int  # deleted, or in a dry run would be
    kept: int  # old enough, but still needed (see ``prune``)


# what each concept still needs of the log, whatever its age: concept -> a function
# making a condition on events (from the concept's store module), registered with
# ``retain`` when the concept's module is imported (a server imports them all)
RETAINED: dict[str, Callable[[], Any]] = {}


def retain(concept: str, rule: Callable[[], Any]) -> None:
    """Register what ``concept`` still needs of the log: ``prune`` keeps every event
    ``rule()`` (a condition on events from the concept's store module) holds."""
    RETAINED[concept] = rule


async def prune(store: Store, older_than: timedelta, type_glob: str | None = None,
                dry_run: bool = False) -> Pruned:
    """Delete events older than ``older_than`` (of ``type_glob``).

    Kept however old: every event the router has not routed yet, whose tasks do not
    exist so far, and every event a concept still needs (``retain``): the tasks keep
    the chain of a task that has not finished, the workflows the chain of a run still
    running and every event their engine has not read yet. A routed event takes its
    route rows with it; its tasks keep their idempotency keys (``route:SEQ:...``) and
    sequence numbers are never reused, so no event is routed twice.
    """
    cutoff = datetime.now(UTC) - older_than
    like = _like(type_glob) if type_glob else None
    keep = [rule() for _, rule in sorted(RETAINED.items())]
    deleted, kept = await store.events.prune(cutoff, like, keep, dry_run)
    return Pruned(deleted, kept)
