"""Real worker processes: a concurrent drain with no task run twice at once and exact
final counts; a SIGKILLed worker whose tasks are re-run after their lease with the
loss recorded; a SIGTERMed worker that finishes within its grace what it can and
hands back the rest; an idle worker woken by another process's submit."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import func, select, update

from agentos import agent_spec, queue, registry
from agentos.store import open_store
from agentos.store.tables import tasks as table
from agentos.tasks import Status, TaskIn
from agentos.worker import instances
from tests.waiting import eventually_async

ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "worker", *args],
                            cwd=ROOT, env=env)


async def publish(url: str, target: str = "record", **limits: object) -> None:
    store = open_store(url)
    await registry.create(store, agent_spec.from_object(
        {"name": "rec", "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
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
    async with store.read() as conn:
        counts = dict((await conn.execute(select(table.c.status, func.count())
                                          .group_by(table.c.status))).all())
    await store.close()
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    pids = set()
    for line in log.read_text().splitlines():
        task_id, start_s, end_s, pid = line.split()
        runs[task_id].append((float(start_s), float(end_s)))
        pids.add(pid)
    assert len(runs) == total  # every task ran
    assert all(len(r) == 1 for r in runs.values())  # and none twice
    assert counts == {Status.SUCCEEDED.value: total}
    assert len(pids) >= 2  # the work really was shared


async def test_sigkilled_worker_tasks_rerun_after_lease(database_url: str,
                                                        tmp_path: Path) -> None:
    await publish(database_url, max_retries=3)
    log = tmp_path / "runs.log"
    store = open_store(database_url)
    submitted = await queue.submit(store, [TaskIn(
        agent="rec", input={"log": str(log), "seconds": 30}) for _ in range(3)])
    victim = start_worker(database_url, "--concurrency", "3", "--lease", "2")
    async def all_running() -> bool:
        return len((await queue.list_tasks(store, status=Status.RUNNING))[0]) == 3

    await eventually_async(all_running, 60, "the three tasks running", interval=0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    # the next worker finishes quickly: shorten the remaining work
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id.in_([t.id for t, _ in submitted]))
                           .values(input={"log": str(log), "seconds": 0}))
    rescuer = start_worker(database_url, "--concurrency", "3", "--lease", "2")
    try:
        async def all_ended() -> bool:
            return all([(await queue.get(store, t.id)).status.final for t, _ in submitted])

        await eventually_async(all_ended, 60, "the rescuer to end the three tasks",
                               interval=0.2)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0
    for task, _ in submitted:
        got = await queue.get(store, task.id)
        assert got.status is Status.SUCCEEDED, got.to_dict()
        assert [a.outcome for a in got.attempts] == ["lost", "succeeded"]
        assert got.attempts[0].worker_id != got.attempts[1].worker_id
    await store.close()


async def test_sigterm_finishes_within_grace_and_hands_back_the_rest(database_url: str) -> None:
    # Given a worker (grace 4 s) running a 1.5 s task and a 60 s one, and a third waiting
    await publish(database_url, "slow", max_retries=0)
    store = open_store(database_url)
    [(short, _), (long, _), (waiting, _)] = await queue.submit(store, [
        TaskIn(agent="rec", input={"seconds": 1.5}, priority=9),
        TaskIn(agent="rec", input={"seconds": 60}, priority=9),
        TaskIn(agent="rec", input={"seconds": 0}, priority=1)])
    worker = start_worker(database_url, "--concurrency", "2", "--grace", "4")
    async def both_running() -> bool:
        return len((await queue.list_tasks(store, status=Status.RUNNING))[0]) == 2

    await eventually_async(both_running, 60, "the two tasks running")
    # When it gets SIGTERM
    worker.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert worker.wait(timeout=30) == 0
    took = time.monotonic() - stopped_at
    # Then the short task ended on its one attempt, the long one was handed back
    # (claimable again, its interrupted attempt free), and nothing new was claimed
    done, back, idle = [await queue.get(store, t.id) for t in (short, long, waiting)]
    await store.close()
    assert done.status is Status.SUCCEEDED and [a.outcome for a in done.attempts] == [
        "succeeded"]
    assert back.status is Status.PENDING and [a.outcome for a in back.attempts] == ["lost"]
    assert back.attempts[0].error["type"] == "handed_back" and back.retry_base == 1
    assert idle.status is Status.PENDING and not idle.attempts
    assert 3.5 <= took < 20  # it waited out the grace period for the long task


async def test_a_submit_from_another_process_wakes_an_idle_worker(database_url: str,
                                                                  backend: str) -> None:
    # Given an idle worker that would poll only once a minute on PostgreSQL (which
    # notifies), every 0.2 s on SQLite (which cannot)
    await publish(database_url, "echo")
    store = open_store(database_url)
    poll = "60" if backend == "postgres" else "0.2"
    worker = start_worker(database_url, "--concurrency", "1", "--poll", poll, "--id", "idle-1")
    try:
        await eventually_async(lambda: instances.list_all(store), 60, "the worker to register")
        await asyncio.sleep(1)  # past its first (empty) claim: now it waits
        # When this process submits a task
        [(task, _)] = await queue.submit(store, [TaskIn(agent="rec")])
        # Then the worker runs it long before its next poll
        async def succeeded() -> bool:
            return (await queue.get(store, task.id)).status is Status.SUCCEEDED

        await eventually_async(succeeded, 20, "the task to succeed")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        await store.close()
