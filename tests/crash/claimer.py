"""A claimer process for the concurrency-limit test: claims tasks of agent ``capped``
at once with its peers, holds each briefly, completes it, and logs when it held it.

Each line is "task_id start end": ``start`` after the claim committed and ``end``
before the completion began, so the logged span lies inside the task's running time.
"""

import asyncio
import random
import sys
import time
from pathlib import Path

from agentos import claims, queue
from agentos.store import open_store
from agentos.tasks import Status, Task


async def hold(store: object, task: Task, rng: random.Random, log: list[str]) -> None:
    start = time.time()
    await asyncio.sleep(rng.uniform(0.005, 0.03))
    log.append(f"{task.id} {start} {time.time()}")
    await claims.complete(store, task.id, task.attempt, {})  # type: ignore[arg-type]


async def main(url: str, name: str, go_at: float, out: str) -> None:
    store = open_store(url, pool_size=4)
    rng = random.Random(name)
    log: list[str] = []
    await asyncio.sleep(max(go_at - time.time(), 0))  # every claimer starts together
    while True:
        got = await claims.claim(store, name, ["capped"], limit=2)
        if got:
            await asyncio.gather(*(hold(store, task, rng, log) for task in got))
            continue
        left, _ = await queue.list_tasks(store, agent="capped", status=Status.PENDING, limit=1)
        if not left:
            break
        await asyncio.sleep(0.01)
    await store.close()
    Path(out).write_text("".join(line + "\n" for line in log))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
