"""Readiness (GET /ready): whether this process's database can serve, and if not why.

A database that answers but has an older schema is not ready until ``agentos db
upgrade``; one that cannot take changes (unreachable, its file gone, read-only, a
full disk) is not ready either. The facts come from the store (``schema.readiness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentos.store import Store, schema

_UNWRITABLE = {"database_read_only": "the database is read-only",
               "disk_full": "the database's disk is full"}


@dataclass(frozen=True)
class Readiness:
    report: dict[str, Any]  # database, schema and pool, as /ready shows them
    why_not: str | None  # None: ready

    @property
    def ready(self) -> bool:
        return self.why_not is None


async def check(store: Store) -> Readiness:
    """Ask the database whether it can serve, and say why not."""
    report = await schema.readiness(store)
    database = report["database"]
    if database["reachable"] and not report["schema"]["up_to_date"]:
        return Readiness(report, "the database schema is not current; run: agentos db upgrade")
    if not database["writable"]:
        return Readiness(report, _UNWRITABLE.get(database.get("problem", ""),
                                                 "the database is unavailable"))
    return Readiness(report, None)
