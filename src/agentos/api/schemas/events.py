"""Events of the log, where the router sent them, and why (router explain)."""

from __future__ import annotations

from typing import Any

from agentos.api.schemas.common import Model, SeqPage, Timestamp


class Event(Model):
    """One event of the log."""

    seq: int
    id: str
    type: str
    source: str
    payload: dict[str, Any]
    priority: str  # critical, high, normal, low
    correlation_id: str
    causation_id: str | None
    run_id: str | None
    subject: str | None
    dedup_key: str | None
    created_at: Timestamp


class AppendedEvent(Event):
    """An emitted event; ``duplicate``: its dedup key was seen before (this is the first)."""

    duplicate: bool = False


class AppendedBatch(Model):
    events: list[AppendedEvent]


class EventPage(SeqPage[Event]):
    """Events in sequence order, or newest first with ``order=desc``."""

    ITEMS = "events"
    events: list[Event]


class EventList(Model):
    events: list[Event]


class Route(Model):
    """An event routed to an agent by one of its triggers, and the task it created."""

    agent: str
    agent_version: str
    trigger_index: int
    priority: int
    task_id: str | None
    created_at: Timestamp
    skipped: str | None = None  # why a trigger that matched made no task


class EventRoutes(Model):
    """``routed``: False while the router has not handled the event yet."""

    event_id: str
    routed: bool
    routes: list[Route]


class Correlation(Model):
    """Everything sharing a correlation id as a causation tree: the roots, each with its
    ``children`` (nodes of every kind: ``kind`` is event, task...)."""

    correlation_id: str
    tree: list[dict[str, Any]]


class Pruned(Model):
    deleted: int | None = None  # None on a dry run
    would_delete: int | None = None  # only on a dry run
    kept: int
