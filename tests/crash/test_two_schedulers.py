"""Two scheduler processes on one database fire each tick exactly once: one event
and one task per tick, never two, and one fire recorded per tick."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

from agentos import agent_spec, events, queue, registry, schedules
from agentos.store import open_store

ROOT = Path(__file__).resolve().parents[2]


async def test_each_tick_fires_once(database_url: str) -> None:
    store = open_store(database_url)
    await registry.create(store, agent_spec.from_object(
        {"name": "ticker", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"}}),
        publish=True)
    await schedules.create(store, schedules.ScheduleIn(
        name="fast", interval_s=0.5, event=schedules.EventTemplate(type="tick.fast")))
    await schedules.create(store, schedules.ScheduleIn.model_validate({
        "name": "both", "interval_s": 0.5, "event": {"type": "tick.both"},
        "task": {"agent": "ticker", "input": {"n": 1}}}))
    await schedules.create(store, schedules.ScheduleIn.model_validate({
        "name": "only-task", "interval_s": 0.5, "task": {"agent": "ticker", "input": {"n": 2}}}))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.crash.scheduler_process",
                               database_url, "6"], cwd=ROOT) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    fired, _ = await events.query(store, events.Query(type="tick.fast", limit=1000))
    both, _ = await events.query(store, events.Query(type="tick.both", limit=1000))
    tasks, _ = await queue.list_tasks(store, agent="ticker", limit=1000)
    made = [t for t in tasks if t.input == {"n": 1}]
    task_only = [t for t in tasks if t.input == {"n": 2}]
    s = await schedules.get(store, "fast")
    fast_fires, _ = await schedules.fires(store, "fast", limit=1000)
    both_fires, _ = await schedules.fires(store, "both", limit=1000)
    task_fires, _ = await schedules.fires(store, "only-task", limit=1000)
    await store.close()
    ticks = Counter(e.payload["scheduled_for"] for e in fired)
    assert len(fired) >= 4  # ~5 s of 0.5 s ticks, minus process start-up
    assert max(ticks.values()) == 1  # no tick twice
    assert s.row.fire_count == len(fired)
    # one task per tick, each under that tick's event
    assert len(both) >= 4 and len(made) == len(both)
    by_event = Counter(t.causation_id for t in made)
    assert set(by_event) == {e.id for e in both} and max(by_event.values()) == 1
    assert len({t.idempotency_key for t in made}) == len(made)
    # one fire recorded per tick, with what the tick made
    assert sorted(f.row.event_id for f in fast_fires) == sorted(e.id for e in fired)
    assert sorted(f.row.event_id for f in both_fires) == sorted(e.id for e in both)
    assert len(task_fires) >= 4
    assert sorted(f.row.task_id for f in task_fires) == sorted(t.id for t in task_only)
    assert len({f.row.scheduled_for for f in task_fires}) == len(task_fires)
