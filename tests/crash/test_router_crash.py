"""SIGKILL the router again and again while it works through a backlog; in the
end every (event, agent, trigger) has exactly one route and none is missing."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from agentos import agent_spec, events, registry
from agentos.store import open_store
from agentos.store.tables import route_queue, routes, tasks

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 3000


async def test_router_survives_sigkill(database_url: str) -> None:
    store = open_store(database_url)
    for name in ("a", "b"):
        await registry.create(store, agent_spec.from_object(
            {"name": name, "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
             "triggers": [{"event": "load.*"}, {"event": "load.x", "priority": 9}]}),
            publish=True)
    for _ in range(EVENTS // 500):
        await events.append(store, [events.EventIn(type="load.x") for _ in range(500)])
    rng = random.Random(1)
    kills = 0
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-m", "tests.crash.router_process",
                                 database_url, "50"], cwd=ROOT)
        time.sleep(0.9 + rng.random() * 0.6)  # past import time, into the routing
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 1, "the router finished before it could be killed once"
    done = subprocess.run([sys.executable, "-m", "tests.crash.router_process", database_url,
                           "500"], cwd=ROOT, timeout=120)
    assert done.returncode == 0
    async with store.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(routes))).scalar_one()
        distinct = (await conn.execute(select(func.count()).select_from(
            select(routes.c.event_seq, routes.c.agent, routes.c.trigger_index)
            .distinct().subquery()))).scalar_one()
        queued = (await conn.execute(select(func.count()).select_from(route_queue))
                  ).scalar_one()
    await store.close()
    assert queued == 0
    assert distinct == total == EVENTS * 2 * 2  # 2 agents x 2 triggers, each once
    async with open_store(database_url).read() as conn:
        made = (await conn.execute(select(func.count()).select_from(tasks))).scalar_one()
    assert made == total  # and exactly one task per route
