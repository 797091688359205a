"""A scheduler process: fires due schedules for SECONDS seconds, then exits."""

import asyncio
import sys
import time

from agentos import schedules
from agentos.store import open_store


async def main(url: str, seconds: float) -> None:
    store = open_store(url, pool_size=2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await schedules.fire_due(store)
        await asyncio.sleep(0.05)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
