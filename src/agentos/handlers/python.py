"""``python`` handlers: an importable ``module:callable``, async or sync (run in a thread)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

from agentos import agent_spec
from agentos.handlers.context import Context, Handler


def make(spec: agent_spec.PythonHandler) -> Handler:
    """Import the target; a sync callable is wrapped to run in a worker thread."""
    module_name, _, attr = spec.target.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if inspect.iscoroutinefunction(target):
        return target  # type: ignore[no-any-return]

    async def in_thread(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.to_thread(target, ctx, data)
        return result

    return in_thread
