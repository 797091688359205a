"""Real worker processes: a concurrent drain with no task run twice at once, and a
SIGKILLed worker whose tasks are re-run after their lease with the loss recorded."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import update

from agentos import agent_spec, queue, registry
from agentos.store import open_store
from agentos.store.tables import tasks as table
from agentos.tasks import Status, TaskIn

ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "worker", *args],
                            cwd=ROOT, env=env)


async def publish(url: str, **limits: object) -> None:
    store = open_store(url)
    await registry.create(store, agent_spec.from_object(
        {"name": "rec", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.handlers:record"},
         "limits": {"backoff": {"initial_s": 0.1, "jitter": False}, **limits}}), publish=True)
    await store.close()


async def test_four_workers_drain_without_overlap(database_url: str, tmp_path: Path) -> None:
    await publish(database_url)
    log = tmp_path / "runs.log"
    store = open_store(database_url)
    total = 2000
    for start in range(0, total, 500):
        await queue.submit(store, [TaskIn(agent="rec", input={"log": str(log), "i": i})
                                   for i in range(start, start + 500)])
    workers = [start_worker(database_url, "--burst", "--concurrency", "8") for _ in range(4)]
    for w in workers:
        assert w.wait(timeout=240) == 0
    done, _ = await queue.list_tasks(store, status=Status.SUCCEEDED, limit=1000)
    counts = {s: len((await queue.list_tasks(store, status=s, limit=1000))[0]) for s in Status}
    await store.close()
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    pids = set()
    for line in log.read_text().splitlines():
        task_id, start_s, end_s, pid = line.split()
        runs[task_id].append((float(start_s), float(end_s)))
        pids.add(pid)
    assert len(runs) == total  # every task ran
    assert all(len(r) == 1 for r in runs.values())  # and none twice
    assert counts[Status.SUCCEEDED] == 1000 and done  # pages of 1000: at least that many
    assert counts[Status.PENDING] == counts[Status.RUNNING] == counts[Status.FAILED] == 0
    assert len(pids) >= 2  # the work really was shared


async def test_sigkilled_worker_tasks_rerun_after_lease(database_url: str,
                                                        tmp_path: Path) -> None:
    await publish(database_url, max_retries=3)
    log = tmp_path / "runs.log"
    store = open_store(database_url)
    submitted = await queue.submit(store, [TaskIn(
        agent="rec", input={"log": str(log), "seconds": 30}) for _ in range(3)])
    victim = start_worker(database_url, "--concurrency", "3", "--lease", "2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = (await queue.list_tasks(store, status=Status.RUNNING))[0]
        if len(running) == 3:
            break
        await asyncio.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    # the next worker finishes quickly: shorten the remaining work
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id.in_([t.id for t, _ in submitted]))
                           .values(input={"log": str(log), "seconds": 0}))
    rescuer = start_worker(database_url, "--concurrency", "3", "--lease", "2")
    try:
        while time.monotonic() < deadline:
            states = [(await queue.get(store, t.id)).status for t, _ in submitted]
            if all(s.final for s in states):
                break
            await asyncio.sleep(0.2)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0
    for task, _ in submitted:
        got = await queue.get(store, task.id)
        assert got.status is Status.SUCCEEDED, got.to_dict()
        assert [a.outcome for a in got.attempts] == ["lost", "succeeded"]
        assert got.attempts[0].worker_id != got.attempts[1].worker_id
    await store.close()
