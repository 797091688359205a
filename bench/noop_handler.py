"""The no-op handler of the task benchmark's agent (``noop_handler:noop``), imported by the
``agentos worker`` processes that ``bench_tasks.py`` starts with this folder on PYTHONPATH."""

from __future__ import annotations

from typing import Any


async def noop(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {}
