"""Metrics' queries: series (name + tags), their rollups and histogram bucket counts.

Writes are batched upserts (a flush of many samples is a few statements); reads group
rollups by series and by bucket with integer arithmetic on the bucket's epoch second,
the same on both backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    String,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.tables import (
    metric_histograms,
    metric_rollups,
    metric_series,
    task_attempts,
    tasks,
)

ms = metric_series.c
mr = metric_rollups.c
mh = metric_histograms.c


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def _least(conn: AsyncConnection, a: Any, b: Any) -> Any:
    return func.least(a, b) if conn.dialect.name == "postgresql" else func.min(a, b)


def _greatest(conn: AsyncConnection, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if conn.dialect.name == "postgresql" else func.max(a, b)


async def series_ids(conn: AsyncConnection, items: Sequence[dict[str, Any]]
                     ) -> dict[tuple[str, str], tuple[int, str]]:
    """Make the series that do not exist yet (name, kind, tags, tags_key, agent);
    (name, tags_key) -> (id, kind) of each, as stored (a kind another process
    stored first wins)."""
    if not items:
        return {}
    await conn.execute(_dialect(conn).insert(metric_series).on_conflict_do_nothing(
        index_elements=[ms.name, ms.tags_key]), list(items))
    rows = (await conn.execute(select(ms.id, ms.kind, ms.name, ms.tags_key).where(
        tuple_(ms.name, ms.tags_key).in_([(i["name"], i["tags_key"]) for i in items])))).all()
    return {(r.name, r.tags_key): (int(r.id), r.kind) for r in rows}


async def upsert_rollups(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Add each row's count and sum to its (series, resolution, bucket), widen min/max."""
    if not rows:
        return
    stmt = _dialect(conn).insert(metric_rollups)
    ex = stmt.excluded
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[mr.series_id, mr.resolution, mr.bucket],
        set_={"count": mr.count + ex["count"], "sum": mr.sum + ex["sum"],
              "min": _least(conn, mr.min, ex["min"]), "max": _greatest(conn, mr.max, ex["max"]),
              "last": ex["last"]}), rows)


async def upsert_histograms(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = _dialect(conn).insert(metric_histograms)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[mh.series_id, mh.resolution, mh.bucket, mh.idx],
        set_={"count": mh.count + stmt.excluded["count"]}), rows)


async def add_totals(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Grow each series' lifetime totals (sid, n, total, last, at): what /metrics shows."""
    if not rows:
        return
    await conn.execute(update(metric_series).where(ms.id == bindparam("sid")).values(
        total_count=ms.total_count + bindparam("n"), total_sum=ms.total_sum + bindparam("total"),
        last_value=bindparam("last"), last_at=bindparam("at")), rows)


async def series_named(conn: AsyncConnection, name: str) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(ms.id, ms.kind, ms.tags).where(ms.name == name))).all()
    return [dict(r._mapping) for r in rows]


async def all_series(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(metric_series).order_by(ms.name, ms.tags_key)
                               .limit(limit))).all()
    return [dict(r._mapping) for r in rows]


async def rollups(conn: AsyncConnection, ids: Sequence[int], resolution: int, start: int,
                  end: int, width: int) -> list[dict[str, Any]]:
    """Per series and group of ``width`` seconds in [start, end): count, sum, min, max,
    and the last value of the group's latest bucket (a gauge's)."""
    group = (mr.bucket - (mr.bucket % width)).label("grp")
    rows = (await conn.execute(select(
        mr.series_id, group, func.sum(mr.count).label("count"), func.sum(mr.sum).label("sum"),
        func.min(mr.min).label("min"), func.max(mr.max).label("max"),
        func.max(mr.bucket).label("latest")).where(
        mr.series_id.in_(ids), mr.resolution == resolution, mr.bucket >= start,
        mr.bucket < end).group_by(mr.series_id, group))).all()
    out = [dict(r._mapping) for r in rows]
    if out:  # the last values, of the latest bucket of each group
        keys = [(r["series_id"], r["latest"]) for r in out]
        lasts = dict(((r.series_id, r.bucket), r.last) for r in (await conn.execute(select(
            mr.series_id, mr.bucket, mr.last).where(
            mr.resolution == resolution,
            tuple_(mr.series_id, mr.bucket).in_(keys)))).all())
        for r in out:
            r["last"] = lasts.get((r["series_id"], r["latest"]))
    return out


async def histograms(conn: AsyncConnection, ids: Sequence[int], resolution: int, start: int,
                     end: int, width: int, *, by_series: bool = True
                     ) -> list[tuple[int | None, int, int, int]]:
    """(series id, group start, bucket index, count) per group of ``width`` seconds and
    bucket index, and per series unless ``by_series`` is false (then summed over them,
    the series id None). Plain tuples: a day by the minute is tens of thousands."""
    group = mh.bucket - (mh.bucket % width)
    series: Any = mh.series_id if by_series else null()
    keys: list[Any] = [group, mh.idx, *([mh.series_id] if by_series else [])]
    rows = (await conn.execute(select(series, group, mh.idx, func.sum(mh.count)).where(
        mh.series_id.in_(ids), mh.resolution == resolution, mh.bucket >= start,
        mh.bucket < end).group_by(*keys))).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def sweep(conn: AsyncConnection, resolution: int, before: int) -> int:
    """Delete the rollups of ``resolution`` older than ``before`` (epoch seconds)."""
    done = 0
    for table in (metric_rollups, metric_histograms):
        result = await conn.execute(delete(table).where(
            table.c.resolution == resolution, table.c.bucket < before))
        done += int(result.rowcount or 0)
    return done


async def forget_agent(conn: AsyncConnection, agent: str) -> int:
    """Delete every series tagged with ``agent`` (their rollups cascade); how many."""
    result = await conn.execute(delete(metric_series).where(ms.agent == agent))
    return int(result.rowcount or 0)


async def attempts(conn: AsyncConnection, keys: Sequence[tuple[str, int]]
                   ) -> dict[tuple[str, int], dict[str, Any]]:
    """Ended attempts' records by (task id, attempt number), each with its task's due time
    and current attempt (``run_at`` is the due time of that attempt only)."""
    if not keys:
        return {}
    ta, t = task_attempts.c, tasks.c
    ids = sorted({task_id for task_id, _ in keys})
    # the ids as one parameter (an array; JSON on SQLite): thousands of bound values
    # would cost more to render than the query costs to run
    if conn.dialect.name == "postgresql":
        wanted: Any = ta.task_id == any_(bindparam("ids", ids, type_=ARRAY(String)))
    else:
        wanted = ta.task_id.in_(select(literal_column("value")).select_from(
            func.json_each(bindparam("ids", json.dumps(ids)))))
    rows = (await conn.execute(select(
        ta.task_id, ta.number, ta.duration_ms, ta.started_at, t.run_at, t.attempt).join(
        tasks, t.id == ta.task_id).where(wanted))).all()
    asked = set(keys)
    return {(r.task_id, r.number): dict(r._mapping) for r in rows
            if (r.task_id, r.number) in asked}


async def queue_depths(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    """(agent, status, count) of unfinished tasks (the (status, seq) index)."""
    t = tasks.c
    rows = (await conn.execute(select(t.agent, t.status, func.count()).where(
        t.status.in_(("pending", "scheduled", "running"))).group_by(t.agent, t.status))).all()
    return [(r[0], r[1], int(r[2])) for r in rows]


async def recent_histograms(conn: AsyncConnection, since: int) -> list[dict[str, Any]]:
    """Per histogram series, bucket index: counts of the minutes since ``since``."""
    rows = (await conn.execute(select(mh.series_id, mh.idx, func.sum(mh.count).label("count"))
                               .where(mh.resolution == 60, mh.bucket >= since)
                               .group_by(mh.series_id, mh.idx))).all()
    return [dict(r._mapping) for r in rows]
