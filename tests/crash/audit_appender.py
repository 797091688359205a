"""A process appending audit rows: ``python -m tests.crash.audit_appender URL WORKER N``.

Its store has the server's hooks. Of every three rows one rides in an event's append
on the driver (on PostgreSQL, the append's own statement: ``Store.folding``), one is
appended on its own (``audit.record``) and one rides in an append's SQLAlchemy write
transaction (a dedup key takes that path), so the test also proves the head-row
locks of all three never deadlock nor fork the chain."""

import asyncio
import sys

from agentos import audit, events
from agentos.store import open_store

KINDS = 3  # n % KINDS: 0 the driver's append, 1 a row alone, 2 a write transaction's


async def main(url: str, worker: int, count: int) -> None:
    store = open_store(url, pool_size=2)
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    try:
        for n in range(count):
            entry = audit.Entry(actor=f"user:w{worker}", action="events.emit",
                                resource_type="events", resource_id=f"{worker}:{n}",
                                details={"worker": worker, "n": n})
            if n % KINDS == 1:
                await audit.record(store, entry)
                continue
            with audit.request_scope():
                audit.expect(entry)
                await events.append(store, [events.EventIn(
                    type="audited.change",
                    dedup_key=f"{worker}:{n}" if n % KINDS == 2 else None)])
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
