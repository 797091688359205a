"""An agent's summary over a window: success rate, p50/p95 duration, throughput (from the
automatic metrics' rollups), tokens and cost (from its LLM call records)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from agentos import registry, telemetry
from agentos.errors import NotFound
from agentos.metrics import query
from agentos.store import Store


async def _value(store: Store, q: query.Query, retention: query.Retention
                 ) -> list[dict[str, Any]]:
    try:
        return list((await query.run(store, q, retention))["groups"])
    except NotFound:  # nothing recorded under that name yet
        return []


async def of_agent(store: Store, agent: str, window: str,
                   retention: query.Retention) -> dict[str, Any]:
    await registry.get(store, agent)  # 404 for an unknown agent
    seconds = query.parse_bucket(window)
    assert seconds is not None
    end = int(time.time()) + 1  # [start, end) keeps this second, and so this minute
    start = datetime.fromtimestamp(end - seconds, UTC)
    until = datetime.fromtimestamp(end, UTC)
    tags = {"agent": agent}
    ended = await _value(store, query.Query("tasks.ended", start, until, agg="sum", tags=tags,
                                            group_by="outcome"), retention)
    outcomes = {g["group"]: int(g["points"][0]["value"] or 0) for g in ended if g["points"]}
    durations: dict[str, float | None] = {}
    for q in ("p50", "p95"):
        found = await _value(store, query.Query("task.duration_ms", start, until, agg=q,
                                                tags={**tags, "outcome": "succeeded"}),
                             retention)
        durations[q] = found[0]["points"][0]["value"] if found and found[0]["points"] else None
    final = outcomes.get("succeeded", 0) + outcomes.get("failed", 0)
    [llm] = await telemetry.summary(store, "agent", agent=agent, since=start) or [
        {"calls": 0, "total_tokens": 0, "prompt_tokens": 0, "completion_tokens": 0,
         "cost": 0.0, "unpriced": 0}]
    return {
        "agent": agent, "window": window, "from": start.isoformat(), "to": until.isoformat(),
        "tasks": outcomes,
        "success_rate": outcomes.get("succeeded", 0) / final if final else None,
        "duration_ms": durations,
        "throughput_per_hour": outcomes.get("succeeded", 0) * 3600 / seconds,
        "llm_calls": llm["calls"],
        "tokens": {"prompt": llm["prompt_tokens"], "completion": llm["completion_tokens"],
                   "total": llm["total_tokens"]},
        "cost": llm["cost"], "unpriced_calls": llm["unpriced"],
    }
