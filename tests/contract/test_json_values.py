"""JSON and time values mean the same on both backends, through the store's one codec
(``store.columns``): a JSON value with unicode, nesting and integers past 64 bits
reads back as written; NaN and Infinity, which JSON cannot hold, are refused alike
and nothing is written; a timestamp reads back as the same instant, in UTC, with its
microseconds."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, delete, insert, select, text

from agentos import events
from agentos.errors import InvalidInput
from agentos.store import Store
from agentos.store.columns import (
    Json,
    NotJson,
    UTCDateTime,
    iso_text,
    json_dumps,
    json_loads,
    utc_from_text,
)

probe = Table("seam_values", MetaData(), Column("id", Integer, primary_key=True),
              Column("value", Json), Column("at", UTCDateTime()))

VALUE: dict[str, Any] = {
    "text": "héllo ✓ 😀 中文 \u2028 \"quoted\" \\ back",
    "nested": {"list": [1, [2, {"x": None}], True, False, 0.1, -2.5e-8], "empty": {},
               "deep": [[[[{"k": "v"}]]]]},
    "big": 2**70, "small": -(2**65), "int64": 2**63 - 1,
}
NOT_JSON = [float("nan"), float("inf"), -float("inf"),
            {"a": [1, {"b": float("nan")}]}, [None, float("inf")], {"n": None, "x": [math.nan]}]


@pytest.fixture
async def values(store: Store) -> AsyncIterator[Store]:
    kind = "JSONB" if store.dialect == "postgresql" else "JSON"
    stamp = "TIMESTAMPTZ" if store.dialect == "postgresql" else "DATETIME"
    async with store.write() as conn:
        await conn.execute(text(f"CREATE TABLE seam_values (id INTEGER PRIMARY KEY, "
                                f"value {kind}, at {stamp})"))
    yield store


def causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, a ``raise from``)."""
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return out


async def read(store: Store) -> list[Any]:
    async with store.read() as conn:
        return [tuple(r) for r in (await conn.execute(
            select(probe.c.value, probe.c.at).order_by(probe.c.id))).all()]


async def test_a_json_value_reads_back_as_written(values: Store) -> None:
    async with values.write() as conn:
        await conn.execute(insert(probe).values(id=1, value=VALUE))
        await conn.execute(insert(probe).values(id=2, value=[VALUE, "x", 3]))
    rows = await read(values)
    assert rows[0][0] == VALUE and rows[1][0] == [VALUE, "x", 3]
    assert type(rows[0][0]["big"]) is int


@pytest.mark.parametrize("bad", NOT_JSON, ids=repr)
async def test_nan_and_infinity_are_refused_alike_and_nothing_is_written(
        values: Store, bad: Any) -> None:
    with pytest.raises(Exception) as caught:
        async with values.write() as conn:
            await conn.execute(insert(probe).values(id=1, value={"ok": 1}))
            await conn.execute(insert(probe).values(id=2, value=bad))
    assert any(isinstance(e, NotJson) for e in causes(caught.value)), caught.value
    assert await read(values) == []


def test_the_codec_refuses_nan_both_ways_and_keeps_big_integers() -> None:
    for bad in NOT_JSON:
        with pytest.raises(NotJson):
            json_dumps(bad)
    for text_ in ("NaN", "[1, Infinity]", '{"a": -Infinity}'):
        with pytest.raises(NotJson):
            json_loads(text_)
    assert json_loads(json_dumps(VALUE)) == VALUE
    assert json_loads(json_dumps({1: "a"})) == {"1": "a"}  # a key becomes a string
    assert json_dumps({"n": None, "f": 1.5}) == '{"n":null,"f":1.5}'


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=5, minutes=30),
                                    timedelta(hours=-8)])
async def test_a_timestamp_keeps_its_instant_and_microseconds(values: Store,
                                                              offset: timedelta) -> None:
    moment = datetime(2026, 12, 5, 3, 4, 5, 123456, tzinfo=timezone(offset))
    whole = datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(offset))  # no microseconds
    async with values.write() as conn:
        await conn.execute(insert(probe).values(id=1, value=None, at=moment))
        await conn.execute(insert(probe).values(id=2, value=None, at=whole))
    (_, got), (_, got_whole) = await read(values)
    assert got == moment and got.tzinfo == UTC and got.microsecond == 123456
    assert got_whole == whole and got_whole.tzinfo == UTC
    async with values.read() as conn:  # compared in the database as instants
        assert (await conn.execute(select(probe.c.id).where(
            probe.c.at > moment - timedelta(microseconds=1),
            probe.c.at < moment + timedelta(microseconds=1)))).scalars().all() == [1]
    for m in (moment, whole):
        assert utc_from_text(iso_text(m)) == m and utc_from_text(iso_text(m)).tzinfo == UTC
    async with values.write() as conn:
        await conn.execute(delete(probe))


async def test_a_time_without_a_zone_is_refused_and_nothing_is_written(values: Store) -> None:
    with pytest.raises(Exception) as caught:
        async with values.write() as conn:
            await conn.execute(insert(probe).values(id=1, at=datetime(2026, 1, 1)))
    assert any(isinstance(e, ValueError) for e in causes(caught.value))
    assert await read(values) == []


@pytest.mark.parametrize("bad", [*NOT_JSON, {"n": 2**64}, {"n": -(2**63) - 1}], ids=repr)
async def test_an_event_payload_json_cannot_hold_is_refused_in_process_too(
        store: Store, bad: Any) -> None:
    # ctx.emit and the domain append what the API would refuse as 422: before, orjson
    # stored NaN as null here and the event was written
    with pytest.raises(InvalidInput) as caught:
        await events.append(store, [events.EventIn(type="a.b", payload={"x": bad})])
    assert caught.value.code == "bad_payload"
    assert (await events.query(store, events.Query()))[0] == []
