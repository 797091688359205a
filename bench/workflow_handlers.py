"""The no-op handler of bench_workflows.py's agent (``workflow_handlers:noop``): run by the
worker inside the benchmark's own process, it notes when a run's first step started."""

from __future__ import annotations

import time
from typing import Any

FIRST_STEP: dict[str, float] = {}  # run id -> time.time() its first step's handler started


async def noop(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    if "mark" in data:
        FIRST_STEP.setdefault(data["mark"], time.time())
    return {}
