"""A process appending audit rows: ``python -m tests.crash.audit_appender URL WORKER N``.

Every other row rides in a change's transaction (an event appended, as an API
request does), so the test also proves the two head-row locks never deadlock."""

import asyncio
import sys

from agentos import audit, events
from agentos.store import open_store


async def main(url: str, worker: int, count: int) -> None:
    store = open_store(url, pool_size=2)
    store.before_commit(audit.flush)
    try:
        for n in range(count):
            entry = audit.Entry(actor=f"user:w{worker}", action="events.emit",
                                resource_type="events", resource_id=f"{worker}:{n}",
                                details={"worker": worker, "n": n})
            if n % 2:
                await audit.record(store, entry)
            else:
                with audit.request_scope():
                    audit.expect(entry)
                    await events.append(store, [events.EventIn(type="audited.change")])
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
