"""Projections the tests register (``AGENTOS_PROJECTIONS=tests.projections_fixture:...``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.events import Event
from agentos.projections import Projection
from agentos.store import Store


class Seen(Projection):
    """Every ``count.*`` event's number, in the order applied: a repeat or a gap shows."""

    name = "seen"
    types = ("count.*",)
    batch = 7

    def keys(self, event: Event) -> Iterable[str]:
        return ["seqs"]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        state.setdefault("seqs", []).append(event.seq)


class Rows(Projection):
    """A projection with a table of its own (``test_rows``, made by the test): a row per
    ``count.*`` event, keyed by its number, so applying one twice would fail."""

    name = "rows"
    types = ("count.*",)
    batch = 5

    async def apply_batch(self, conn: AsyncConnection, batch: list[Event]) -> None:
        await conn.execute(text("INSERT INTO test_rows (seq, type) VALUES (:seq, :type)"),
                           [{"seq": e.seq, "type": e.type} for e in batch])

    async def clear(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM test_rows"))

    async def query(self, store: Store, params: dict[str, str]) -> dict[str, Any]:
        async with store.read() as conn:
            seqs = list((await conn.execute(text("SELECT seq FROM test_rows ORDER BY seq"))
                         ).scalars())
        return {"items": {"seqs": seqs}, "next_after": None}


def both() -> list[Projection]:
    return [Seen(), Rows()]


not_a_projection = 42
