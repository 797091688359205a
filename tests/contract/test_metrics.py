"""Metrics on both backends: samples buffered and flushed as rollups (one row per series
and minute, and per hour, never per sample), aggregated over buckets and whole ranges
(the whole hours from the hourly rollups), grouped by a tag; retention; the automatic
metrics folded from real tasks' events exactly once; ctx.metrics from handlers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from agentos import metrics
from agentos.metrics import automatic, query
from agentos.store import Store, open_store
from agentos.store.tables import metric_histograms, metric_rollups, metric_series
from agentos.tasks import Status
from tests.contract.test_handler_kinds import agent, run, submit

KEPT = query.Retention()


async def count_rows(store: Store, table: Any, **where: Any) -> int:
    async with store.read() as conn:
        stmt = select(func.count()).select_from(table)
        for k, v in where.items():
            stmt = stmt.where(table.c[k] == v)
        return int((await conn.execute(stmt)).scalar_one())


async def ask(store: Store, name: str, **kw: Any) -> dict[str, Any]:
    return await query.run(store, query.Query(name, **kw), KEPT)


def points(answer: dict[str, Any], group: str | None = None) -> list[float | None]:
    found = next(g for g in answer["groups"] if g["group"] == group)
    return [p["value"] for p in found["points"]]


async def test_samples_become_rollups_not_rows(store: Store) -> None:
    rec = metrics.Recorder(store)
    hour = int(time.time()) // 3600 * 3600 - 3600  # the previous whole hour
    for minute in range(60):
        for n in range(100):  # 6,000 samples: 1..100 ms in every minute
            rec.observe("job.ms", n + 1, {"agent": "a"}, at=hour + minute * 60 + 1)
    rec.count("job.done", 2, {"agent": "a"}, at=hour + 5)
    rec.count("job.done", 3, {"agent": "b"}, at=hour + 5)
    rec.gauge("pool.size", 4, at=hour + 10)
    rec.gauge("pool.size", 7, at=hour + 20)
    assert await rec.flush() == 60 + 3
    assert await rec.flush() == 0
    [series] = [s for s in await _series(store) if s["name"] == "job.ms"]
    # 60 minute rows and 1 hour row for 6,000 samples
    assert await count_rows(store, metric_rollups, series_id=series["id"]) == 61
    assert await count_rows(store, metric_histograms, series_id=series["id"],
                            resolution=3600) <= 60  # log-scale buckets of 1..100
    assert series["total_count"] == 6000 and series["total_sum"] == 60 * 5050
    start = datetime.fromtimestamp(hour, UTC)
    end = datetime.fromtimestamp(hour + 3600, UTC)
    whole = await ask(store, "job.ms", start=start, end=end, agg="p95")
    assert whole["resolutions"] == [3600] and whole["series"] == 1
    [p95] = points(whole)
    assert p95 is not None and abs(p95 - 95) / 95 < 0.05
    assert points(await ask(store, "job.ms", start=start, end=end, agg="count")) == [6000]
    assert points(await ask(store, "job.ms", start=start, end=end, agg="avg")) == [50.5]
    assert points(await ask(store, "job.ms", start=start, end=end, agg="max")) == [100]
    per_15 = await ask(store, "job.ms", start=start, end=end, agg="count", bucket="15m")
    assert per_15["resolutions"] == [60] and points(per_15) == [1500.0] * 4
    done = await ask(store, "job.done", start=start, end=end, agg="sum", group_by="agent")
    assert points(done, "a") == [2.0] and points(done, "b") == [3.0]
    only_b = await ask(store, "job.done", start=start, end=end, agg="sum", tags={"agent": "b"})
    assert points(only_b) == [3.0]
    assert points(await ask(store, "pool.size", start=start, end=end, agg="last")) == [7.0]
    with pytest.raises(Exception, match="needs a histogram"):
        await ask(store, "job.done", start=start, end=end, agg="p95")


async def test_flushes_from_several_recorders_add_up(store: Store) -> None:
    at = time.time() - 120
    for _ in range(3):  # three processes' buffers writing the same series and minute
        rec = metrics.Recorder(store)
        for v in (1.0, 10.0):
            rec.observe("lat.ms", v, {"agent": "x"}, at=at)
        await rec.flush()
    answer = await ask(store, "lat.ms", agg="count", bucket="1m",
                       start=datetime.fromtimestamp(at - 60, UTC))
    assert sum(v or 0 for v in points(answer)) == 6
    assert points(await ask(store, "lat.ms", agg="min")) == [1.0]


async def test_retention_sweeps_old_rollups(store: Store) -> None:
    rec = metrics.Recorder(store)
    now = time.time()
    rec.count("old.thing", 1, at=now - 10 * 86_400)  # past the minutes' 7 days
    rec.count("old.thing", 1, at=now - 100 * 86_400)  # past the hours' 90 days
    rec.count("old.thing", 1, at=now - 60)
    await rec.flush()
    assert await count_rows(store, metric_rollups) == 6
    assert await query.sweep(store, KEPT) > 0
    async with store.read() as conn:
        left = sorted((r.resolution, r.bucket < now - 86_400) for r in (await conn.execute(
            select(metric_rollups.c.resolution, metric_rollups.c.bucket))).all())
    assert left == [(60, False), (3600, False), (3600, True)]


async def test_automatic_metrics_from_real_tasks_count_once(store: Store) -> None:
    await agent(store, "echoer", {"type": "python", "target": "tests.handlers:echo"})
    await agent(store, "failing", {"type": "python", "target": "tests.handlers:broken"},
                limits={"max_retries": 1})
    done = await run(store, *[await submit(store, "echoer", n=i) for i in range(5)],
                     await submit(store, "failing", retryable=True))
    assert [t.status for t in done] == [Status.SUCCEEDED] * 5 + [Status.FAILED]
    # two processes' loops at once, each with its own pool: every attempt counts once
    other = open_store(store.url)
    try:
        await asyncio.gather(*(automatic.Automatic().catch_up(s)
                               for s in (store, other, store, other)))
    finally:
        await other.close()
    ended = await ask(store, "tasks.ended", agg="sum", group_by="outcome",
                      tags={"agent": "failing"})
    assert points(ended, "retried") == [1.0] and points(ended, "failed") == [1.0]
    ok = await ask(store, "tasks.ended", agg="sum", tags={"agent": "echoer"})
    assert points(ok) == [5.0]  # once, though four loops ran
    durations = await ask(store, "task.duration_ms", agg="count", tags={"agent": "echoer"})
    assert points(durations) == [5.0]
    waits = await ask(store, "task.queue_wait_ms", agg="count", tags={"agent": "echoer"})
    assert points(waits) == [5.0]
    await automatic.sample_depths(store)  # nothing waits: no gauge for nobody
    await metrics.of(store).flush()


async def test_handlers_record_through_ctx_metrics(store: Store) -> None:
    await agent(store, "counter", {"type": "python", "target": "tests.handlers:measured"})
    await agent(store, "counter-sync", {"type": "python",
                                        "target": "tests.handlers:sync_measured"})
    await run(store, await submit(store, "counter", n=3), await submit(store, "counter-sync",
                                                                       n=2))
    answer = await ask(store, "widgets.made", agg="sum", group_by="agent")
    assert points(answer, "counter") == [3.0] and points(answer, "counter-sync") == [2.0]
    assert points(await ask(store, "widget.size", agg="count")) == [5.0]


async def _series(store: Store) -> list[dict[str, Any]]:
    async with store.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(select(metric_series))).all()]
