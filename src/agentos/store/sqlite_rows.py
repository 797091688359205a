"""Rows of SQLite's own connection (``sqlite3``, the hot path's) as SQLAlchemy gives
them: named tuples with JSON parsed, times as aware UTC datetimes, booleans."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Boolean

from agentos.store.columns import UTCDateTime, json_loads, utc_from_text


def reader(columns: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
    """Turn raw rows of ``columns`` (table columns, in order) into named tuples holding
    what SQLAlchemy would give: JSON parsed, times as aware UTC datetimes, booleans."""
    row = namedtuple("row", [c.name for c in columns])  # type: ignore[misc]
    steps = [(n, f) for n, c in enumerate(columns) if (f := _converter(c.type)) is not None]

    def read(values: Sequence[Any]) -> Any:
        out = list(values)
        for n, convert in steps:
            if out[n] is not None:
                out[n] = convert(out[n])
        return row._make(out)

    return read


def _converter(kind: Any) -> Callable[[Any], Any] | None:
    if isinstance(kind, UTCDateTime):
        return utc_from_text
    if isinstance(kind, JSON):
        return json_loads
    if isinstance(kind, Boolean):
        return bool
    return None
