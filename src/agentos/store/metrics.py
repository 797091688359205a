"""Metrics' queries: series (name + tags), their rollups and histogram bucket counts.

Writes are batched upserts (a flush of many samples is four statements, whatever its
size), each finding its series by name and tags inside the statement: no series id
outlives a transaction, so a series deleted meanwhile (its agent deleted) is made
again rather than written through a stale id. Reads group rollups by series and by
bucket with integer arithmetic on the bucket's epoch second, the same on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    null,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import sql
from agentos.store.columns import json_dumps
from agentos.store.tables import (
    events,
    metric_histograms,
    metric_rollups,
    metric_series,
    task_attempts,
    tasks,
)

ms = metric_series.c
mr = metric_rollups.c
mh = metric_histograms.c


def _least(dialect: str, a: Any, b: Any) -> Any:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def _greatest(dialect: str, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _rows(dialect: str, columns: dict[str, Any]) -> Any:
    """The ``rows`` parameter as a table a statement reads (``v``): a batch's rows as
    one JSON array the database unpacks (``jsonb_to_recordset`` on PostgreSQL,
    ``json_each`` on SQLite), so a batch of any size is one statement that can join
    the series by name and tags."""
    data: Any = bindparam("rows", type_=Text())
    if dialect == "postgresql":
        return func.jsonb_to_recordset(cast(data, JSONB)).table_valued(
            *(column(name, type_) for name, type_ in columns.items())
        ).render_derived(name="v", with_types=True)
    each = func.json_each(data).table_valued("value")
    return select(*(func.json_extract(each.c.value, f"$.{name}").label(name)
                    for name in columns)).subquery("v")


_SERIES = {"name": Text(), "kind": Text(), "tags_key": Text()}  # what names a series


def _series_of(v: Any) -> Any:
    """The join of ``v`` with the series it names, of the kind it says."""
    return v.join(metric_series, and_(ms.name == v.c.name, ms.tags_key == v.c.tags_key,
                                      ms.kind == v.c.kind))


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def _run_rows(conn: AsyncConnection, name: str, rows: Sequence[dict[str, Any]]) -> Any:
    """The write ``name`` (of ``_WRITES``) of a batch's ``rows``, as its driver's text:
    each is built and compiled once a dialect (``sql.compiled``), where building and
    compiling it again every flush cost a fold of the log most of its time."""
    text, params = sql.compiled(_WRITES[name], conn.dialect.name)
    return await sql.run(conn, text, {**params, "rows": json_dumps(list(rows))})


def _ensure_series(dialect: str) -> Any:
    v = _rows(dialect, {**_SERIES, "tags": JSONB(), "agent": Text()})
    new = select(v.c.name, v.c.kind, v.c.tags, v.c.tags_key, v.c.agent).where(~exists().where(
        ms.name == v.c.name, ms.tags_key == v.c.tags_key))  # no sequence number spent
    return _insert(dialect, metric_series).from_select(
        ["name", "kind", "tags", "tags_key", "agent"], new
    ).on_conflict_do_nothing(index_elements=[ms.name, ms.tags_key])


def _upsert_rollups(dialect: str) -> Any:
    v = _rows(dialect, {**_SERIES, "resolution": Integer(), "bucket": BigInteger(),
                        "count": BigInteger(), "sum": Float(), "min": Float(),
                        "max": Float(), "last": Float()})
    found = select(ms.id, v.c.resolution, v.c.bucket, v.c.count, v.c.sum, v.c.min, v.c.max,
                   v.c.last).select_from(_series_of(v)).where(true()).order_by(
        ms.id, v.c.resolution, v.c.bucket)  # one order in every process: no deadlock
    stmt = _insert(dialect, metric_rollups).from_select(
        ["series_id", "resolution", "bucket", "count", "sum", "min", "max", "last"], found)
    ex = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[mr.series_id, mr.resolution, mr.bucket],
        set_={"count": mr.count + ex["count"], "sum": mr.sum + ex["sum"],
              "min": _least(dialect, mr.min, ex["min"]),
              "max": _greatest(dialect, mr.max, ex["max"]), "last": ex["last"]})


def _upsert_histograms(dialect: str) -> Any:
    v = _rows(dialect, {**_SERIES, "resolution": Integer(), "bucket": BigInteger(),
                        "idx": Integer(), "count": BigInteger()})
    found = select(ms.id, v.c.resolution, v.c.bucket, v.c.idx, v.c.count).select_from(
        _series_of(v)).where(true()).order_by(ms.id, v.c.resolution, v.c.bucket, v.c.idx)
    stmt = _insert(dialect, metric_histograms).from_select(
        ["series_id", "resolution", "bucket", "idx", "count"], found)
    return stmt.on_conflict_do_update(
        index_elements=[mh.series_id, mh.resolution, mh.bucket, mh.idx],
        set_={"count": mh.count + stmt.excluded["count"]})


def _add_totals(dialect: str) -> Any:
    v = _rows(dialect, {**_SERIES, "n": BigInteger(), "total": Float(), "last": Float(),
                        "at": BigInteger()})
    return update(metric_series).where(
        ms.name == v.c.name, ms.tags_key == v.c.tags_key, ms.kind == v.c.kind).values(
        total_count=ms.total_count + v.c.n, total_sum=ms.total_sum + v.c.total,
        last_value=v.c.last, last_at=v.c.at)


_WRITES = {"ensure_series": _ensure_series, "upsert_rollups": _upsert_rollups,
           "upsert_histograms": _upsert_histograms, "add_totals": _add_totals}


async def ensure_series(conn: AsyncConnection, items: Sequence[dict[str, Any]]) -> None:
    """Make the series of ``items`` (name, kind, tags, tags_key, agent) that do not exist
    yet; one that exists keeps its kind (another process stored it first)."""
    if items:
        await _run_rows(conn, "ensure_series", items)


async def upsert_rollups(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Add each row's count and sum to its (series, resolution, bucket), widen min/max.
    A row names its series (name, kind, tags_key): the id is found in the statement, so
    none is ever kept from an earlier transaction (a series deleted since, its id
    reused by another, would take the samples). Rows of a series that is gone or of
    another kind are left out."""
    if rows:
        await _run_rows(conn, "upsert_rollups", rows)


async def upsert_histograms(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Add each row's count to its (series, resolution, bucket, index); rows name their
    series as ``upsert_rollups``' do."""
    if rows:
        await _run_rows(conn, "upsert_histograms", rows)


async def add_totals(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Grow each series' lifetime totals (name, kind, tags_key, n, total, last, at): what
    /metrics shows. Returns how many series were found (of that kind)."""
    if not rows:
        return 0
    return int((await _run_rows(conn, "add_totals", rows)).rowcount or 0)


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


def _epoch(dialect: str, moment: Any) -> Any:
    """A timestamp column as epoch seconds (a float), in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", moment)
    return (func.julianday(moment) - 2440587.5) * 86400.0


async def ended_after(conn: AsyncConnection, after: int, settled: int, types: Sequence[str],
                      limit: int) -> list[tuple[Any, ...]]:
    """Events of ``types`` with ``after < seq <= settled``, in order, at most ``limit``, as
    (seq, type, agent, at epoch s, attempt duration ms, queue wait ms, lock type, lock
    wait ms): a task event joined in the database with its attempt's record and its
    task's due time (the wait only for the task's latest attempt, whose due time it
    is), so no payload is parsed in Python. (The times come as floats or, PostgreSQL's
    epochs, decimals.)"""
    text, params = sql.compiled(_ended_after, conn.dialect.name, tuple(types))
    found = await sql.run(conn, text, {**params, "after": after, "settled": settled,
                                       "limit": limit})
    return [tuple(r) for r in found.fetchall()]


def _ended_after(dialect: str, types: tuple[str, ...]) -> Any:
    e, ta, t = events.c, task_attempts.c, tasks.c
    payload = e.payload
    started, due = _epoch(dialect, ta.started_at), _epoch(dialect, t.run_at)
    return select(
        e.seq, e.type, payload["agent"].as_string(), _epoch(dialect, e.created_at),
        ta.duration_ms,
        case((t.attempt == ta.number, (started - due) * 1000.0), else_=null()),
        payload["type"].as_string(), payload["waited_ms"].as_float(),
    ).select_from(events.outerjoin(task_attempts, and_(
        e.type != "lock.acquired", ta.task_id == payload["task_id"].as_string(),
        ta.number == payload["attempt"].as_integer())).outerjoin(tasks, t.id == ta.task_id)
    ).where(e.seq > bindparam("after", 0, BigInteger()),
            e.seq <= bindparam("settled", 0, BigInteger()), e.type.in_(types)
            ).order_by(e.seq).limit(bindparam("limit", 1, Integer()))


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
