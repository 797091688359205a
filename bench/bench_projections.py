"""Benchmark: projection catch-up over 1,000,000 events on SQLite and PostgreSQL, beside
a bare loop reading the same events.

For each backend a fresh database gets ``--events`` task lifecycle events (created,
started, succeeded for a third as many tasks over 50 agents), appended through
``events.append`` in batches of 10,000. Then, one after the other, on the same data:

  bare loop      ``events.read_after`` in pages of 1,000 (the events as ``Event``
                 objects, nothing done with them): what reading the log costs
  <projection>   ``consumers.catch_up`` from the start of the log: read a batch of
                 1,000, fold it, write the state and the cursor, in one transaction

Reported: events per second and the ratio of each projection's rate to the bare
loop's. One process; the machine is shared (load average stated).

    .venv/bin/python bench/bench_projections.py
    .venv/bin/python bench/bench_projections.py --events 100000 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import code_state, machine_info, start_postgres

from agentos import consumers, events, projections
from agentos.events import EventIn
from agentos.store import Store, open_store, schema

APPEND_BATCH = 10_000
READ_PAGE = 1000
AGENTS = 50


async def load(store: Store, count: int) -> float:
    started = time.monotonic()
    kinds = ("created", "started", "succeeded")
    batch: list[EventIn] = []
    for n in range(count):
        task = n // 3
        batch.append(EventIn(type=f"task.{kinds[n % 3]}", source="queue",
                             payload={"task_id": f"t{task}", "agent": f"agent-{task % AGENTS}",
                                      "attempt": 1}))
        if len(batch) == APPEND_BATCH:
            await events.append(store, batch)
            batch = []
    if batch:
        await events.append(store, batch)
    return time.monotonic() - started


async def bare_loop(store: Store) -> tuple[int, float]:
    started, seen, after = time.monotonic(), 0, 0
    while True:
        async with store.read() as conn:
            page = await events.read_after(store, conn, after, READ_PAGE, "task.*")
        if not page:
            return seen, time.monotonic() - started
        seen += len(page)
        after = page[-1].seq


async def catch_up(store: Store, projection: projections.Projection) -> tuple[int, float]:
    started = time.monotonic()
    applied = await consumers.catch_up(store, projection.consumer())
    return applied, time.monotonic() - started


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'projections.db'}"
        return
    with start_postgres(durable=False) as cluster:
        yield cluster.create_database("projections")


async def measure(url: str, count: int) -> dict[str, Any]:
    store = open_store(url)
    try:
        loaded_s = await load(store, count)
        read, read_s = await bare_loop(store)
        rows: dict[str, Any] = {"bare loop": {"events": read, "seconds": read_s}}
        for projection in projections.load().values():
            applied, took = await catch_up(store, projection)
            rows[projection.name] = {"events": applied, "seconds": took}
    finally:
        await store.close()
    base = rows["bare loop"]["events"] / rows["bare loop"]["seconds"]
    for row in rows.values():
        row["events_per_s"] = row["events"] / row["seconds"]
        row["vs_bare"] = row["events_per_s"] / base
    return {"load_seconds": round(loaded_s, 1), "rows": rows}


def run_backend(backend: str, count: int, workdir: Path) -> dict[str, Any]:
    with database(backend, workdir) as url:
        schema.upgrade(url)
        return asyncio.run(measure(url, count))


def render(data: dict[str, Any]) -> str:
    lines = [f"AgentOS projection catch-up: {data['config']['events']:,} task events, "
             f"batches of {consumers.DEFAULT_BATCH}, one process",
             f"machine: {data['machine']['nproc']} CPUs, load average "
             f"{data['load_average']['before']} before, {data['load_average']['after']} after "
             f"(shared with other work); code {data['code']['commit']}", "",
             f"{'backend':10}{'reader':18}{'events':>10}{'seconds':>9}{'events/s':>10}"
             f"{'vs bare':>9}"]
    for backend, res in data["backends"].items():
        for name, row in res["rows"].items():
            lines.append(f"{backend:10}{name:18}{row['events']:10d}{row['seconds']:9.1f}"
                         f"{row['events_per_s']:10.0f}{row['vs_bare']:8.2f}x")
        lines.append(f"{'':10}(appended in {res['load_seconds']} s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres",
                        type=lambda s: [b.strip() for b in s.split(",") if b.strip()])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    before = [round(v, 2) for v in os.getloadavg()]
    results = {}
    with tempfile.TemporaryDirectory(prefix="agentos-bench-projections-") as tmp:
        for backend in args.backends:
            results[backend] = run_backend(backend, args.events, Path(tmp))
    data = {"benchmark": "projection catch-up vs a bare read of the log",
            "command": shlex.join(["python", "bench/bench_projections.py", *argv]),
            "code": code_state(), "machine": machine_info(),
            "load_average": {"before": before, "after": [round(v, 2) for v in os.getloadavg()]},
            "config": {"events": args.events}, "backends": results}
    print(json.dumps(data, indent=2) if args.json else render(data))


if __name__ == "__main__":
    main()
