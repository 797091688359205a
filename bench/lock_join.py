"""A wait's queue join on a held lock: the join first (what a process that last handed
the lock over does) against the acquire first, alternated in one process.

    .venv/bin/python bench/lock_join.py 2000 sqlite
    .venv/bin/python bench/lock_join.py 1000 postgres      # a durable cluster of its own

Each call joins with a new owner (a queue entry and its ``lock.queued`` event, as a
client that just released and waits again), then leaves the queue (not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from common import start_postgres

from agentos import locks
from agentos.locks import Claim
from agentos.locks.model import claim_params
from agentos.store import open_store, schema

R = "device:j"


async def main(url: str, n: int) -> None:
    s = open_store(url, pool_size=2)
    await locks.acquire(s, R, Claim("h", ttl_s=3600))
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(n):
        for first in (i % 2 == 0, i % 2 == 1):
            p = {**claim_params(R, Claim(f"w{i}-{first}"), token=None), "attempt": None,
                 "queue_s": 60.0}
            t = time.perf_counter()
            got = await s.locks.acquire_or_join(p, held_first=first)
            times[first].append(time.perf_counter() - t)
            assert isinstance(got, tuple) and getattr(got, "position", 0) >= 1, got
            async with s.write() as conn:
                await s.locks.leave_queue(conn, R, p["owner"])
    await s.close()
    for first, spent in times.items():
        spent.sort()
        p50, mean = spent[len(spent) // 2] * 1e6, statistics.mean(spent) * 1e6
        print(f"{'join first' if first else 'acquire first':14} p50 {p50:7.1f} us  "
              f"mean {mean:7.1f} us")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="joins of each kind")
    parser.add_argument("backend", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'join.db'}"
            schema.upgrade(url)
            asyncio.run(main(url, args.n))
        return
    with start_postgres(durable=True) as cluster:
        url = cluster.create_database("join")
        schema.upgrade(url)
        asyncio.run(main(url, args.n))


if __name__ == "__main__":
    run()
