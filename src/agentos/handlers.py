"""Handler kinds (SPEC §2.5) and the context a Python handler receives.

A handler turns a task's input into its output. ``python`` handlers are
imported from ``module:callable`` (async, or sync run in a thread) and called
as ``handler(ctx, input) -> dict``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentos import events
from agentos.errors import InvalidInput
from agentos.store import Store

Handler = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any]]]


class HandlerError(Exception):
    """Raised by a handler to fail its attempt; ``retryable=False`` dead-letters at once."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Context:
    """What a Python handler gets besides its input."""

    task: dict[str, Any]
    agent: dict[str, Any]  # the agent version's definition
    store: Store
    heartbeat: Callable[[], Awaitable[None]]
    log: logging.LoggerAdapter[logging.Logger]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def config(self) -> dict[str, Any]:
        """The agent's typed config values."""
        return {k: v.get("value") for k, v in self.agent.get("config", {}).items()}

    async def emit(self, type: str, payload: dict[str, Any] | None = None,
                   priority: events.PriorityName = "normal") -> events.Event:
        """Append an event caused by this task, in its correlation."""
        [appended] = await events.append(self.store, [events.EventIn(
            type=type, source=f"agent:{self.task['agent']}", payload=payload or {},
            priority=priority, correlation_id=self.task["correlation_id"],
            causation_id=self.task["id"])])
        return appended.event


def load(definition: dict[str, Any]) -> Handler:
    """The callable for an agent's handler (only ``python`` runs in this version)."""
    spec = definition["handler"]
    if spec["type"] != "python":
        raise InvalidInput(f"handler type {spec['type']} is not supported by this worker yet",
                           code="handler_unsupported")
    module_name, _, attr = spec["target"].partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if inspect.iscoroutinefunction(target):
        return target  # type: ignore[no-any-return]

    async def in_thread(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.to_thread(target, ctx, data)
        return result

    return in_thread
