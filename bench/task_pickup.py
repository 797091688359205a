"""How soon an idle worker in another process starts a task submitted over HTTP: a
server and one ``agentos worker`` on one database, ``--n`` single submits spaced
``--gap`` seconds apart (jittered, so no submit lines up with a poll), and for each
task its attempt's start minus its creation, both by the database's clock.

    python bench/task_pickup.py                       # SQLite and PostgreSQL
    python bench/task_pickup.py --backends sqlite --n 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_events import server_env
from bench_tasks import AGENT, APP, agentos_command, fresh_database
from common import Server, auth_headers, percentile, start_postgres, worker_env


def measure(backend: str, url_of: str, workdir: Path, n: int, gap: float,
            postmaster: int | None = None) -> dict[str, float]:
    env = worker_env(url_of)
    with Server(APP, server_env(url_of, background=True), workdir) as server, \
            (workdir / f"worker-{backend}.log").open("wb") as log:
        worker = subprocess.Popen([*agentos_command(), "worker", "--concurrency", "4",
                                   "--id", f"pickup-{backend}"], cwd=workdir, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(base_url=server.base_url, headers=auth_headers(),
                              timeout=30) as http:
                _wait_for_worker(http)
                ids = []
                for _ in range(n):
                    time.sleep(gap * (0.5 + random.random()))
                    answer = http.post("/api/v1/tasks", json={"agent": AGENT})
                    answer.raise_for_status()
                    ids.append(answer.json()["id"])
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    left = [i for i in ids[-5:] if http.get(f"/api/v1/tasks/{i}").json()[
                        "status"] != "succeeded"]
                    if not left:
                        break
                    time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait(30)
    waits = sorted(asyncio.run(_waits(url_of)))
    if len(waits) != n:
        raise RuntimeError(f"{len(waits)} of {n} tasks started")
    return {f"p{p}": percentile(waits, p) * 1000 for p in (50, 90, 99)} | {
        "max": waits[-1] * 1000, "n": len(waits)}


def _wait_for_worker(http: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if http.get("/api/v1/workers").json().get("workers"):
            time.sleep(1.0)  # its first claim is done: it waits now
            return
        time.sleep(0.1)
    raise RuntimeError("the worker never registered")


async def _waits(url: str) -> list[float]:
    from sqlalchemy import select

    from agentos.store import open_store
    from agentos.store.tables import task_attempts, tasks

    store = open_store(url)
    try:
        async with store.read() as conn:
            rows = (await conn.execute(
                select(tasks.c.created_at, task_attempts.c.started_at)
                .join(task_attempts, task_attempts.c.task_id == tasks.c.id))).all()
    finally:
        await store.close()
    return [(started - created).total_seconds() for created, started in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between submits")
    args = parser.parse_args()
    print(f"task pickup: submit over HTTP -> the attempt's start, an idle worker process, "
          f"{args.n} tasks ~{args.gap * 1000:.0f} ms apart (ms, database clock)")
    print(f"{'backend':10} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    with tempfile.TemporaryDirectory(prefix="agentos-pickup-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                db = fresh_database("sqlite", "pickup", workdir, None)
                got = measure(backend, db.url, workdir, args.n, args.gap)
            else:
                with start_postgres(durable=True) as cluster:
                    db = fresh_database("postgres", "pickup", workdir, cluster)
                    got = measure(backend, db.url, workdir, args.n, args.gap)
            print(f"{backend:10} {got['p50']:8.1f} {got['p90']:8.1f} {got['p99']:8.1f} "
                  f"{got['max']:8.1f}")


if __name__ == "__main__":
    main()
