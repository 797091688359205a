"""Runs the router against a database until killed (for the SIGKILL test)."""

import asyncio
import sys

from agentos import router
from agentos.store import open_store


async def main(url: str) -> None:
    store = open_store(url)
    while await router.route_batch(store, limit=int(sys.argv[2])):
        pass
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
