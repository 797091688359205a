"""A producer process for the ordering test: appends COUNT events in small batches."""

import asyncio
import random
import sys

from agentos import events
from agentos.store import open_store


async def main(url: str, worker: int, count: int) -> None:
    store = open_store(url, pool_size=2)
    sent = 0
    rng = random.Random(worker)
    while sent < count:
        size = min(rng.randint(1, 5), count - sent)
        await events.append(store, [
            events.EventIn(type="order.test", source=f"w{worker}",
                           payload={"worker": worker, "n": sent + i}) for i in range(size)])
        sent += size
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
