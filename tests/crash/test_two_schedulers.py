"""Two scheduler processes on one database fire each tick exactly once."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

from agentos import events, schedules
from agentos.store import open_store

ROOT = Path(__file__).resolve().parents[2]


async def test_each_tick_fires_once(database_url: str) -> None:
    store = open_store(database_url)
    await schedules.create(store, schedules.ScheduleIn(
        name="fast", interval_s=0.5, event=schedules.EventTemplate(type="tick.fast")))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.crash.scheduler_process",
                               database_url, "6"], cwd=ROOT) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    fired, _ = await events.query(store, events.Query(type="tick.fast", limit=1000))
    s = await schedules.get(store, "fast")
    await store.close()
    ticks = Counter(e.payload["scheduled_for"] for e in fired)
    assert len(fired) >= 4  # ~5 s of 0.5 s ticks, minus process start-up
    assert max(ticks.values()) == 1  # no tick twice
    assert s.row.fire_count == len(fired)
