"""What the log's followers in a server cost per event (issue 21 target 5).

A server folds every task event into its read models (the built-in projections
``agent_activity`` and ``task_stats``) and its automatic metrics (tasks ended, their
durations and queue waits). Here, in this one process on a fresh database, each round
submits a batch of tasks over five agents, claims them and completes them (the
queue's own calls: created, started and succeeded events with their attempts'
records), then steps the followers as a server's runners would after a gathering,
until each has caught up; only the stepping is timed. Reported per follower: this
process's CPU per task event appended and per round (PostgreSQL's own CPU is not
counted; the metrics read only the ended tasks' events, a third).

    python bench/followers.py [--backends sqlite,postgres] [--rounds 30] [--per 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import start_postgres

AGENTS = [f"agent-{n}" for n in range(5)]


async def measure(url: str, rounds: int, per: int) -> dict[str, dict[str, float]]:
    from agentos import agent_spec, claims, consumers, projections, queue, registry
    from agentos.metrics import automatic
    from agentos.store import open_store, schema
    from agentos.tasks import TaskIn

    schema.upgrade(url)
    store = open_store(url)
    read_models = list(projections.load(None).values())
    paces = {p.name: consumers.Pace.of(store, p.batch) for p in read_models}
    metrics = automatic.Automatic()

    async def fold_read_models() -> None:
        for projection in read_models:
            while True:
                moved = await consumers.advance(store, projection.consumer(),
                                                paces[projection.name])
                if moved is None or moved[1]:
                    break

    async def fold_metrics() -> None:
        while (await metrics.step(store))[1]:
            pass

    followers: dict[str, Callable[[], Awaitable[None]]] = {
        "read models": fold_read_models, "metrics": fold_metrics}
    cpu = dict.fromkeys(followers, 0.0)
    appended = 0
    try:
        for agent in AGENTS:
            await registry.create(store, agent_spec.from_object(
                {"name": agent, "version": "1.0.0",
                 "handler": {"type": "python", "target": "m:f"}}), publish=True)
        for fold in followers.values():
            await fold()
        for _ in range(rounds):
            tasks = per // 3
            await queue.submit(store, [TaskIn(agent=AGENTS[i % len(AGENTS)], input={"n": i})
                                       for i in range(tasks)])
            claimed = await claims.claim(store, "bench-worker", limit=tasks)
            await claims.cycle(store, "bench-worker", [
                claims.Finished(t.id, t.attempt, {"ok": True}, took_locks=False)
                for t in claimed])
            appended += 3 * len(claimed)
            for name, fold in followers.items():
                started = time.process_time()
                await fold()
                cpu[name] += time.process_time() - started
    finally:
        await store.close()
    return {name: {"us_per_event": round(spent / appended * 1e6, 1),
                   "ms_per_round": round(spent / rounds * 1e3, 2)}
            for name, spent in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per", type=int, default=300,
                        help="task events a round (a third each: created, started, succeeded)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 100_000 or not 3 <= args.per <= 3_000:
        parser.error("--rounds between 1 and 100000, --per between 3 and 3000")
    found: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'agentos.db'}"
                found[backend] = asyncio.run(measure(url, args.rounds, args.per))
        elif backend == "postgres":
            cluster = start_postgres(durable=True)
            try:
                found[backend] = asyncio.run(measure(cluster.create_database("followers"),
                                                     args.rounds, args.per))
            finally:
                cluster.stop()
        else:
            parser.error(f"unknown backend {backend!r}")
    if args.json:
        print(json.dumps(found))
        return
    print(f"{'backend':9} {'follower':12} {'CPU us/event':>13} {'CPU ms/round':>13}")
    for backend, by_follower in found.items():
        for name, figures in by_follower.items():
            print(f"{backend:9} {name:12} {figures['us_per_event']:>13} "
                  f"{figures['ms_per_round']:>13}")


if __name__ == "__main__":
    main()
