"""A lock contender for the crash tests: takes one resource COUNT times and appends
"token start end" per hold to OUT. MODE "http" goes through a server (the SDK's
``client.lock``), "db" through the domain straight on the database."""

import asyncio
import sys
import time
from pathlib import Path

from agentos import locks
from agentos.sdk import Client
from agentos.store import open_store

RESOURCE = "device:contended"


async def over_http(url: str, owner: str, count: int, out: Path) -> None:
    with Client(url) as client, out.open("a") as f:
        for _ in range(count):
            async with client.lock(RESOURCE, owner, ttl_s=30, wait_s=120) as lease:
                start = time.time()
                await asyncio.sleep(0.001)
                f.write(f"{lease.token} {start} {time.time()}\n")


async def on_database(url: str, owner: str, count: int, out: Path) -> None:
    store = open_store(url, pool_size=2)
    try:
        with out.open("a") as f:
            for _ in range(count):
                got = await locks.acquire(store, RESOURCE, locks.Claim(owner, ttl_s=30),
                                          wait_s=120)
                assert got.granted
                [grant] = got.grants
                start = time.time()
                await asyncio.sleep(0.001)
                f.write(f"{grant.token} {start} {time.time()}\n")
                await locks.release(store, RESOURCE, owner, grant.token)
    finally:
        await store.close()


if __name__ == "__main__":
    mode, url, owner, count, out = sys.argv[1:6]
    run = over_http if mode == "http" else on_database
    asyncio.run(run(url, owner, int(count), Path(out)))
