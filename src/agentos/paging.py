"""Cursor paging, the part every list shares: read one row more than the page holds,
and if it came, the next page starts after the page's last row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.engine import Row as SqlRow
from sqlalchemy.ext.asyncio import AsyncConnection

Row = TypeVar("Row")
Key = TypeVar("Key")

DEFAULT_LIMIT = 100  # items a list route answers with unless asked for more
MAX_LIMIT = 1000  # items a list route answers with at most


def fetch(limit: int | None) -> int | None:
    """How many rows to read for a page of ``limit`` (None: every row, one page)."""
    return None if limit is None else limit + 1


def cut(rows: Sequence[Row], limit: int | None, key: Callable[[Row], Key]
        ) -> tuple[list[Row], Key | None]:
    """The page, and the cursor of the next one (the key of the page's last row), or
    None when no more rows follow."""
    if limit is None or len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), key(rows[limit - 1])


async def keyed(conn: AsyncConnection, stmt: Select[Any], key: ColumnElement[Any],
                after: str | None, limit: int | None) -> tuple[list[SqlRow[Any]], str | None]:
    """A page of ``stmt``'s rows in the order of its unique column ``key`` (a name, an
    id), those after ``after``, at most ``limit``; and the next page's cursor."""
    stmt = stmt.order_by(key).limit(fetch(limit))
    if after is not None:
        stmt = stmt.where(key > after)
    return cut((await conn.execute(stmt)).all(), limit, lambda r: str(r._mapping[key]))
