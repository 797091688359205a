"""Hand-over latency alone: 200 hand-overs of one lock between two stores in one process
(the waiter's store listening, as a server's bus does), from the holder's release call
to the waiter's acquire returning; p50/p90/p99 in ms. A durable PostgreSQL cluster
(``--fast``: fsync off). Run another tree's code with PYTHONPATH=THAT_TREE/src."""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from common import start_postgres

from agentos import locks
from agentos.locks import Claim
from agentos.store import open_store, schema

R = "bench:handover"


async def measure(url: str, n: int) -> list[float]:
    holder, waiter = open_store(url, pool_size=2), open_store(url, pool_size=2)
    listener = asyncio.create_task(waiter.listen([locks.CHANNEL]))
    try:
        while locks.CHANNEL not in waiter.listening:
            await asyncio.sleep(0.01)
        took = []
        for _ in range(n):
            grant = (await locks.acquire(holder, R, Claim("a"))).grants[0]
            wait = asyncio.create_task(locks.acquire(waiter, R, Claim("b"), wait_s=10))
            while not (await locks.get(holder, R))["queue"]:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.003)  # the waiter is parked on its wake-up
            start = time.perf_counter()
            await locks.release(holder, R, "a", grant.token)
            got = await wait
            took.append(time.perf_counter() - start)
            await locks.release(waiter, R, "b", got.grants[0].token)
        return sorted(took)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await holder.close()
        await waiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--fast", action="store_true", help="fsync off")
    args = parser.parse_args()
    with start_postgres(durable=not args.fast) as cluster:
        url = cluster.create_database("handover")
        schema.upgrade(url)
        took = asyncio.run(measure(url, args.n))
    p = {q: took[min(len(took) - 1, int(len(took) * q / 100))] * 1000 for q in (50, 90, 99)}
    print(f"hand-over p50 {p[50]:.2f}  p90 {p[90]:.2f}  p99 {p[99]:.2f} ms  "
          f"(n={args.n}, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
