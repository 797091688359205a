"""The event router (SPEC §2.3): every event is matched against the triggers of
published agents, and each match is recorded exactly once as a route.

An event is queued for routing (``route_queue``) by the statement that appends it, and
only when a trigger published then may match its type (``store/sql/routable.sql``): an
event no trigger names is routed to nobody there and then, so events no agent listens
to cost the router nothing, and an agent published later is not triggered by them. A
queued event is matched against the agents published when it is routed.

Routing takes events from ``route_queue`` most urgent first and, in one
transaction, records their routes and removes them from the queue: a crash
(even SIGKILL) before the commit leaves the queue as it was, and the unique
(event, agent, trigger) key forbids a second route after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import capabilities, events, patterns, queue
from agentos.aio import stop_wakes, wait_wakeup
from agentos.events import Event
from agentos.store import Store
from agentos.store.routes import Stamp, Wanted
from agentos.tasks import TaskIn

log = logging.getLogger("agentos.router")

BATCH = 500  # events routed per transaction
# ... grown up to this while batches come back full on a store whose statements leave
# the event loop (PostgreSQL): each of a batch's round trips waits a whole loop round
# on a busy server, so a larger batch pays the same few rounds for more events
MAX_BATCH = 8000
POLL_INTERVAL = 1.0  # seconds; commits in this process (or NOTIFY) wake it sooner
LIFECYCLE = "task."  # the queue's own events


# ------------------------------------------------------------ pure matching


def lookup(payload: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """(found, value) at the dotted path ``dotted`` of ``payload``."""
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


# JSON's true, false and null as dictionary keys apart from the numbers 1 and 0
_TRUE, _FALSE, _NULL = object(), object(), object()


def equality_key(value: Any) -> Hashable | None:
    """A key equal to another's exactly when a filter finds the two values the same
    (``_same`` compares scalars by it), for a JSON scalar; None for a list or an
    object, which filters compare by value and a dictionary cannot hold."""
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if value is None:
        return _NULL
    if isinstance(value, (str, int, float)):
        return value
    return None


def _same(a: Any, b: Any) -> bool:
    """Whether a filter finds the two payload values the same: scalars by their
    ``equality_key`` (JSON true is not 1), lists and objects by Python's equality
    (inside them true still equals 1)."""
    ka, kb = equality_key(a), equality_key(b)
    if ka is None or kb is None:
        return ka is None and kb is None and bool(a == b)
    return bool(ka == kb)


def mismatch(trigger: dict[str, Any], event_type: str, payload: dict[str, Any],
             capabilities: dict[str, bool] | None) -> str | None:
    """Why ``trigger`` does not fire for this event, or None when it does
    (``capabilities`` None: whether the event matches it, switches aside)."""
    if not patterns.matches(trigger["event"], event_type):
        return f"type {event_type!r} does not match {trigger['event']!r}"
    if event_type.startswith(LIFECYCLE) and not trigger["event"].startswith(LIFECYCLE):
        # routing makes tasks, tasks make task.* events: a "*" trigger would loop forever
        return f"{LIFECYCLE}* events only match triggers that name them"
    for key, expected in trigger.get("filter", {}).items():
        found, value = lookup(payload, key)
        if not found:
            return f"payload has no {key!r}"
        if isinstance(expected, list):
            if not any(_same(value, e) for e in expected):
                return f"payload {key}={value!r} is not one of {expected!r}"
        elif not _same(value, expected):
            return f"payload {key}={value!r} is not {expected!r}"
    return None if capabilities is None else switched_off(trigger, capabilities)


def switched_off(trigger: dict[str, Any], capabilities: dict[str, bool]) -> str | None:
    """Why a trigger that matches an event does not fire now: a capability it needs is
    switched off (or None)."""
    needed = trigger.get("capability")
    if needed and not capabilities.get(needed, False):
        return f"capability {needed!r} is disabled"
    return None


@dataclass(frozen=True)
class Routable:
    """The latest published version of one agent, as the router needs it."""

    name: str
    version: str
    triggers: list[dict[str, Any]]
    capabilities: dict[str, bool]


def task_input(trigger: dict[str, Any], event: Event) -> dict[str, Any]:
    """The task input for a route: the trigger's ``input`` mapping, where a value
    ``"{payload.x.y}"`` (or ``"{event.type}"``, ``"{event.id}"``) is looked up in the
    event; without a mapping, the event's payload."""
    mapping = trigger.get("input")
    if not mapping:
        return dict(event.payload)
    source = {"payload": event.payload, "event": event.to_dict()}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            found, looked_up = lookup(source, value[1:-1])
            out[key] = looked_up if found else None
        else:
            out[key] = value
    return out


def why_not(agent: Routable, trigger: dict[str, Any], event_type: str,
            payload: dict[str, Any], *, switches: bool = True) -> str | None:
    """Why ``trigger`` of ``agent`` does not fire for this event, or None when it does
    (``mismatch``, and an agent is never triggered by its own tasks' lifecycle;
    ``switches=False``: whether the event matches it, its capabilities aside)."""
    if event_type.startswith(LIFECYCLE) and payload.get("agent") == agent.name:
        return f"{LIFECYCLE}* events of {agent.name}'s own tasks never trigger it"
    return mismatch(trigger, event_type, payload, agent.capabilities if switches else None)


def matches(agents: list[Routable], event: Event
            ) -> list[tuple[Routable, int, int, str | None]]:
    """(agent, trigger index, priority, skipped) for every trigger the event matches:
    ``skipped`` None when it fires, else why it does not now (a capability it needs is
    switched off: its route records that, with no task)."""
    out = []
    for agent in agents:
        for i, trigger in enumerate(agent.triggers):
            if why_not(agent, trigger, event.type, event.payload, switches=False) is None:
                out.append((agent, i, int(trigger.get("priority", 5)),
                            switched_off(trigger, agent.capabilities)))
    return out


# ------------------------------------------------------------------ storage


@dataclass(frozen=True)
class Route:
    event_seq: int
    agent: str
    agent_version: str
    trigger_index: int
    priority: int
    task_id: str | None
    created_at: datetime
    skipped: str | None = None  # the trigger matched but did not fire: why (no task)

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "agent_version": self.agent_version,
                "trigger_index": self.trigger_index, "priority": self.priority,
                "task_id": self.task_id, "skipped": self.skipped,
                "created_at": self.created_at.isoformat()}


async def routable_agents(store: Store, conn: AsyncConnection,
                          switched: dict[str, dict[str, bool]] | None = None,
                          *, untriggered: bool = False) -> list[Routable]:
    """The latest published version of every agent with triggers (``untriggered``: of
    every agent); its capabilities as live ``switched`` (``capabilities.switched_in``)
    overrides what the definition says."""
    return _routables(await store.routes.published_agents(conn), switched or {},
                      untriggered=untriggered)


def _routables(rows: list[Any], switched: dict[str, dict[str, bool]], *,
               untriggered: bool = False) -> list[Routable]:
    latest: dict[str, Routable] = {}
    for row in rows:
        if row.name not in latest:
            d = row.definition
            latest[row.name] = Routable(
                row.name, row.version, d.get("triggers", []),
                capabilities.overlay(d.get("capabilities", []), switched.get(row.name, {})))
    return [a for a in latest.values() if a.triggers or untriggered]


def wanted(agents: list[Routable]) -> tuple[Wanted, ...]:
    """What an event must be, trigger by trigger, as far as the database can tell: an
    event none of them may be is routed to nobody, so the router need not read it."""
    return tuple(dict.fromkeys(
        Wanted(patterns.to_like(t["event"]), sql_filter(t.get("filter", {})))
        for a in agents for t in a.triggers))


def sql_filter(conditions: dict[str, Any]
               ) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The conditions of a trigger's filter the database checks exactly as ``mismatch``
    does: (path, JSON texts) where every expected value is a string, a boolean, null or
    a number below 2**53. A stored payload's numbers are the JSON of Python's ints and
    floats (the log encodes every payload it appends), and JSON compares them by
    value: it finds two equal exactly when Python does, but where an int meets a
    float past 2**53 (a float's shortest text is not its exact value there). A
    condition with another value is left to the router."""
    out = []
    for key, expected in conditions.items():
        values = expected if isinstance(expected, list) else [expected]
        if all(_exact_in_json(v) for v in values):
            out.append((tuple(key.split(".")),
                        tuple(json.dumps(v, ensure_ascii=False) for v in values)))
    return tuple(out)


def _exact_in_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, (int, float)) and abs(value) < 2**53


@dataclass(frozen=True)
class _Known:
    """The agents the router routes by, as of a ``Stamp`` of the rows they came from."""

    stamp: Stamp
    agents: list[Routable]
    wanted: tuple[Wanted, ...]


# per store: what the last batch routed by; a batch whose take sees another stamp reads
# them again, in its own transaction, before it routes anything
_known: weakref.WeakKeyDictionary[Store, _Known] = weakref.WeakKeyDictionary()


async def _read_agents(store: Store, conn: AsyncConnection) -> _Known:
    found = await store.routes.routing(conn)
    switched: dict[str, dict[str, bool]] = {}
    for row in found.switches:
        switched.setdefault(row["agent"], {})[row["capability"]] = row["enabled"]
    agents = _routables(found.agents, switched)
    known = _known[store] = _Known(found.stamp, agents, wanted(agents))
    return known


class _Stale(Exception):
    """The agents or switches changed since the router last read them."""


async def route_batch(store: Store, limit: int = BATCH) -> int:
    """Route up to ``limit`` queued events, most urgent first; returns how many."""
    known = _known.get(store)
    while True:
        try:
            return await _route_batch(store, limit, known)
        except _Stale:
            known = None  # read them again (in the next try's own transaction)
            await asyncio.sleep(0)  # a burst of changes: let others run meanwhile


async def _route_batch(store: Store, limit: int, known: _Known | None) -> int:
    async with store.write() as conn:
        # the agents and switches the last batch read, unless the take's own snapshot
        # says they changed since (its stamp): then the take is rolled back and the
        # batch taken again after reading them, so an event routed after a change
        # committed (a version published, a capability switched) is routed by it; the
        # take is the batch's one read
        if known is None:
            known = await _read_agents(store, conn)
        taken = await store.routes.take(conn, limit, known.wanted)
        if taken.stamp is not None and taken.stamp != known.stamp:
            raise _Stale
        rows = taken.rows
        agents = known.agents
        recorded: list[dict[str, Any]] = []  # every route, in urgency order
        new_routes = []  # those that fire: each with its task
        work: list[TaskIn] = []
        for row in rows:  # urgency order: the route ids record it
            event = Event.from_row(row)
            for agent, index, priority, skipped in matches(agents, event):
                route = {"event_seq": event.seq, "agent": agent.name,
                         "agent_version": agent.version, "trigger_index": index,
                         "priority": priority, "skipped": skipped, "task_id": None}
                recorded.append(route)
                if skipped is not None:  # recorded, so its routes say why it has no task
                    continue
                new_routes.append(route)
                work.append(TaskIn(
                    agent=agent.name, version=agent.version, priority=priority,
                    input=task_input(agent.triggers[index], event),
                    correlation_id=event.correlation_id, causation_id=event.id,
                    # it needs the trigger's capability: switched off later, it waits
                    capability=agent.triggers[index].get("capability"),
                    # one task per route, even if a crash made us route again
                    idempotency_key=f"route:{event.seq}:{agent.name}:{index}"))
        if new_routes:
            # each route's task, in this same transaction (its events go last)
            made = await queue.submit_in(store, conn, work)
            for route, (task, _) in zip(new_routes, made, strict=True):
                route["task_id"] = task.id
        if recorded:
            await store.routes.record(conn, recorded)
    if new_routes:
        log.info("routed %d events to %d agents", taken.count, len(new_routes),
                 extra={"action": "events_routed"})
    return taken.count


async def run(store: Store, stop: asyncio.Event | None = None) -> None:
    """Route until ``stop`` is set (or cancelled), woken by commits that appended events."""
    wakeup = store.wakeup(events.CHANNEL)
    limit = BATCH
    try:
        async with stop_wakes(stop, wakeup):
            while stop is None or not stop.is_set():
                wakeup.clear()
                try:
                    routed = await route_batch(store, limit)
                    if routed == limit:
                        limit = next_limit(limit, routed, inline=store.inline)
                        await asyncio.sleep(0)  # more are queued: after others' turn (HTTP)
                        continue
                    limit = BATCH
                except Exception:
                    limit = BATCH
                    log.exception("routing failed", extra={"action": "route_failed"})
                await wait_wakeup(wakeup, POLL_INTERVAL)
    finally:
        store.forget_wakeup(events.CHANNEL, wakeup)


def next_limit(limit: int, routed: int, *, inline: bool) -> int:
    """The next batch's size: doubled (up to ``MAX_BATCH``) after a full batch on a store
    whose statements leave the loop, else ``BATCH`` (SQLite's statements run on the
    loop: a larger batch would only hold it longer)."""
    if routed < limit or inline:
        return BATCH
    return min(limit * 2, MAX_BATCH)


async def routes_of(store: Store, event_seq: int) -> list[Route]:
    async with store.read() as conn:
        rows = await store.routes.of_event(conn, event_seq)
    return [Route(x.event_seq, x.agent, x.agent_version, x.trigger_index, x.priority,
                  x.task_id, x.created_at, x.skipped) for x in rows]


async def is_routed(store: Store, event_seq: int) -> bool:
    async with store.read() as conn:
        return not await store.routes.is_queued(conn, event_seq)
