"""Read models ("projections", SPEC §2.10): named folds over the event log.

A projection declares the event types it reads and folds each event into a JSON
state of keyed values: ``keys(event)`` names the keys an event touches and
``apply(state, event)`` changes them (a pure function of the loaded values; a value
set to None is deleted). The events are read, never changed: read models of the same
types are handed the same objects (``consumers._events``). Each batch is applied in
the transaction that moves the projection's cursor (``agentos.consumers``), so it
never applies an event twice or skips one, and a rebuild (``rebuild``) clears the
state and folds the whole log again into the same state the live one reached. A
projection that keeps its own tables overrides ``apply_batch``, ``clear`` and
``query`` instead.

Built in: ``agent_activity`` (per agent: its open tasks by status, how its tasks
ended, its last run) and ``task_stats`` (task lifecycle counts, in all and by hour).
An installation adds its own with ``AGENTOS_PROJECTIONS=module:attr[,module:attr]``
(a projection, a class of one, a list of them, or a callable returning those).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import consumers
from agentos.consumers import Consumer, Position
from agentos.errors import InvalidInput, NotFound
from agentos.events import Event
from agentos.store import Store
from agentos.store import projections as store_projections

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PREFIX = "projection:"  # a projection's consumer name
MAX_PAGE = 1000
GATHER_S = 0.1  # seconds a live projection gathers appends before folding them (its lag)


class Projection:
    """Subclass with ``name``, ``types``, ``keys`` and ``apply`` (see the module)."""

    name: ClassVar[str]
    types: ClassVar[tuple[str, ...]]  # event-type globs
    description: ClassVar[str] = ""
    batch: ClassVar[int] = consumers.DEFAULT_BATCH

    def keys(self, event: Event) -> Iterable[str]:
        """The state keys ``event`` changes (none here: a projection with its own
        tables, which overrides ``apply_batch``, needs none)."""
        return ()

    def apply(self, state: dict[str, Any], event: Event) -> None:
        """Fold ``event`` into ``state`` (holding the values of its keys that exist)."""

    def view(self, key: str, value: Any) -> Any:
        """A value as the query route shows it."""
        return value

    # -- the storage a projection with its own tables overrides --------

    async def apply_batch(self, conn: AsyncConnection, batch: list[Event]) -> None:
        """Apply a batch in its transaction: load the keys it touches, fold, save."""
        relevant = [(e, list(self.keys(e))) for e in batch]
        state = await store_projections.load(conn, self.name,
                                             (k for _, keys in relevant for k in keys))
        touched: set[str] = set()
        for event, keys in relevant:
            if keys:
                self.apply(state, event)
                touched.update(keys)
        await store_projections.save(conn, self.name, {k: state.get(k) for k in touched})

    async def clear(self, conn: AsyncConnection) -> None:
        await store_projections.clear(conn, self.name)

    async def query(self, store: Store, params: dict[str, str]) -> dict[str, Any]:
        """The state: one ``key``, the keys starting with ``prefix``, paged by ``after``."""
        limit = _limit(params.get("limit"))
        async with store.read() as conn:
            found = await store_projections.items(
                conn, self.name, key=params.get("key"), prefix=params.get("prefix"),
                after=params.get("after"), limit=limit + 1)
        page = found[:limit]
        return {"items": {k: self.view(k, v) for k, v in page},
                "next_after": page[-1][0] if len(found) > limit else None}

    def consumer(self) -> Consumer:
        return Consumer(PREFIX + self.name, self.types, self.apply_batch, self.clear,
                        self.batch, gather_s=GATHER_S)


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    return int(text)


# ------------------------------------------------------------- built-ins

OPEN = {"created": "pending", "retrying": "pending", "started": "running"}
# the status a lifecycle event moves its task out of (a cancel says which: ``was``)
LEFT = {"started": "pending", "retrying": "running", "succeeded": "running",
        "failed": "running"}
ENDED = ("succeeded", "failed", "cancelled")


class AgentActivity(Projection):
    """Per agent: its unfinished tasks by status, how many ended each way, its last run."""

    name = "agent_activity"
    types = ("task.*",)
    description = "tasks by agent and status, and each agent's last run"

    def keys(self, event: Event) -> Iterable[str]:
        agent = event.payload.get("agent")
        return [agent] if isinstance(agent, str) else []

    def apply(self, state: dict[str, Any], event: Event) -> None:
        fold_activity(state, event)

    def view(self, key: str, value: Any) -> Any:
        return {"agent": key, "tasks": {**_open_counts(value), **value["ended"]},
                "last_run": value["last_run"], "events": value["events"],
                "last_event_at": value["last_event_at"]}


def _open_counts(value: dict[str, Any]) -> dict[str, int]:
    """An agent's unfinished tasks by status; from the task ids a state folded before
    the counts were kept (``open``) once, which the next fold replaces."""
    if "open" not in value:
        return dict(value["tasks"])
    counts = dict.fromkeys(("pending", "running"), 0)
    for status in value["open"].values():
        counts[status] += 1
    return counts


def fold_activity(state: dict[str, Any], event: Event) -> None:
    """The agent-activity fold (pure: ``state`` in, ``state`` changed).

    An agent's value holds counts, never its tasks' ids (a backlog of a million
    pending tasks is two numbers): each lifecycle event moves one task between them,
    the way it says it went. ``task.cancelled`` names the status it left (``was``:
    pending, scheduled or running); one written before it did is taken from pending
    while any is counted. A count never goes below zero (a log whose oldest events
    were deleted by retention starts mid-way)."""
    agent, kind = event.payload["agent"], event.type.removeprefix("task.")
    task_id = str(event.payload.get("task_id"))
    value = state.get(agent)
    if value is None:
        value = state[agent] = {"tasks": {"pending": 0, "running": 0},
                                "ended": dict.fromkeys(ENDED, 0), "last_run": None,
                                "events": 0, "last_event_at": None}
    if "open" in value:
        value["tasks"] = _open_counts(value)
        del value["open"]
    tasks = value["tasks"]
    at = event.created_at.isoformat()
    value["events"] += 1
    value["last_event_at"] = at
    left = LEFT.get(kind)
    if kind == "cancelled":
        was = event.payload.get("was")
        left = "running" if was == "running" or (was is None and not tasks["pending"]) \
            else "pending"
    if left is not None:
        tasks[left] = max(tasks[left] - 1, 0)
    if kind in OPEN:
        tasks[OPEN[kind]] += 1
    elif kind in ENDED:
        value["ended"][kind] += 1
    if kind == "started":
        value["last_run"] = {"task_id": task_id, "status": "running", "started_at": at,
                             "ended_at": None}
    elif kind in ENDED and (value["last_run"] or {}).get("task_id") == task_id:
        value["last_run"] = {**value["last_run"], "status": kind, "ended_at": at}


class TaskStats(Projection):
    """Task lifecycle events counted in all and by hour (UTC)."""

    name = "task_stats"
    types = ("task.*",)
    description = "task lifecycle counts, in all and by hour"

    def keys(self, event: Event) -> Iterable[str]:
        return ["total", hour_key(event)]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        fold_stats(state, event)

    def view(self, key: str, value: Any) -> Any:
        done = value.get("succeeded", 0) + value.get("failed", 0)
        return {**value, "success_rate": round(value.get("succeeded", 0) / done, 4)
                if done else None}


def hour_key(event: Event) -> str:
    """``hour:YYYY-MM-DDTHH`` of the event's ``created_at`` (UTC, as the store gives
    it): the text of each hour is made once (``_HOURS``), where writing the time as
    ISO text cost 1.7 µs, twice an event, and a dict's look 0.2."""
    at = event.created_at
    hour = (at.year, at.month, at.day, at.hour)
    key = _HOURS.get(hour)
    if key is None:
        if len(_HOURS) >= MAX_HOURS:  # a rebuild of a long log: start over
            _HOURS.clear()
        key = _HOURS[hour] = "hour:" + at.isoformat()[:13]
    return key


MAX_HOURS = 1024
_HOURS: dict[tuple[int, int, int, int], str] = {}


def fold_stats(state: dict[str, Any], event: Event) -> None:
    """The task-statistics fold (pure)."""
    kind = event.type.removeprefix("task.")
    for key in ("total", hour_key(event)):
        counts = state.setdefault(key, {})
        counts[kind] = counts.get(kind, 0) + 1


BUILT_IN: tuple[type[Projection], ...] = (AgentActivity, TaskStats)


# ------------------------------------------------------------ registry


def load(spec: str | None = None) -> dict[str, Projection]:
    """The built-ins plus those ``spec`` names (``module:attr``, comma-separated)."""
    found: list[Projection] = [cls() for cls in BUILT_IN]
    for item in (spec or "").split(","):
        if item.strip():
            found += _import(item.strip())
    registry: dict[str, Projection] = {}
    for projection in found:
        if not isinstance(getattr(projection, "name", None), str) or \
                not NAME.match(projection.name):
            raise InvalidInput(f"projection name {getattr(projection, 'name', None)!r} must "
                               f"match {NAME.pattern}", code="bad_projection")
        if projection.name in registry:
            raise InvalidInput(f"two projections are named {projection.name}",
                               code="bad_projection")
        projection.consumer().likes()  # its event-type globs are valid
        registry[projection.name] = projection
    return registry


def _import(item: str) -> list[Projection]:
    module_name, _, attr = item.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"AGENTOS_PROJECTIONS: cannot load {item!r}: {exc}",
                           code="bad_projection") from None
    if callable(target) and not isinstance(target, Projection):
        target = target()  # a Projection class, or a function that returns them
    items = list(target) if isinstance(target, list | tuple) else [target]
    if not all(isinstance(p, Projection) for p in items):
        raise InvalidInput(f"AGENTOS_PROJECTIONS: {item!r} is not a Projection (nor a list "
                           "of them)", code="bad_projection")
    return items


def find(registry: dict[str, Projection], name: str) -> Projection:
    if name not in registry:
        raise NotFound(f"no projection named {name}", code="projection_not_found",
                       details={"name": name, "known": sorted(registry)})
    return registry[name]


async def status(store: Store, registry: dict[str, Projection],
                 names: list[str] | None = None) -> list[dict[str, Any]]:
    """Each projection's cursor, lag (events, seconds) and status."""
    chosen = [find(registry, n) for n in (names or sorted(registry))]
    found = await consumers.positions(store, [PREFIX + p.name for p in chosen])
    return [_described(p, at) for p, at in zip(chosen, found, strict=True)]


async def rebuild(store: Store, registry: dict[str, Projection], name: str) -> dict[str, Any]:
    """Clear a projection and start it over from the log (its runners rebuild it);
    409 while a rebuild of it has not caught up yet."""
    projection = find(registry, name)
    return _described(projection, await consumers.reset(store, projection.consumer()))


def _described(projection: Projection, at: Position) -> dict[str, Any]:
    return {**at.to_dict(), "name": projection.name, "types": list(projection.types),
            "description": projection.description}


async def run(store: Store, projection: Projection, stop: Any) -> None:
    """Keep ``projection`` up to date until ``stop`` is set (a server's background loop)."""
    await consumers.run(store, projection.consumer(), stop)
