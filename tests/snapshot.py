"""Every row of every table, to prove a refused request wrote nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agentos.store import Store
from agentos.store.tables import metadata

# tables the server's own loops change while it is up (the router's progress, the
# projections' cursors and states, metrics); a request's writes show in the others (an event
# appended is in ``events`` as well as in ``route_queue``)
BACKGROUND = ("route_queue", "routes", "consumers", "projection_state",
              # metrics: the server's flush of its buffer (HTTP requests counted too) and
              # the automatic metrics folded from the log
              "metric_series", "metric_rollups", "metric_histograms")


async def snapshot(store: Store, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """``skip``: more tables that may change meanwhile (the audit log of a refusal)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with store.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in skip or table.name in BACKGROUND:
                continue
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
