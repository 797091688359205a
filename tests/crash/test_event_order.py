"""Gapless order: 8 processes append concurrently while a tailer pages by
``after_seq``; the tailer must see every event exactly once, in order.

On PostgreSQL, sequence numbers handed out by a plain sequence commit out of
order, and a tailer that has read seq 11 never returns to a 10 that commits
later; this test catches that."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from agentos import events
from agentos.store import open_store

ROOT = Path(__file__).resolve().parents[2]
PRODUCERS = 8
EACH = 200


async def test_tailer_sees_every_event_once_in_order(database_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "tests.crash.appender", database_url,
                               str(w), str(EACH)], cwd=ROOT) for w in range(PRODUCERS)]
    store = open_store(database_url)
    seen: list[tuple[int, int, int]] = []  # (seq, worker, n)
    cursor = 0
    deadline = time.monotonic() + 90
    try:
        while len(seen) < PRODUCERS * EACH and time.monotonic() < deadline:
            page, _ = await events.query(store, events.Query(after_seq=cursor, limit=50))
            for e in page:
                seen.append((e.seq, e.payload["worker"], e.payload["n"]))
            if page:
                cursor = page[-1].seq
            else:
                await asyncio.sleep(0.001)
    finally:
        await store.close()
        for p in procs:
            assert p.wait(timeout=60) == 0
    seqs = [s for s, _, _ in seen]
    assert len(seen) == PRODUCERS * EACH
    assert seqs == list(range(1, PRODUCERS * EACH + 1))  # in order, none skipped or repeated
    for w in range(PRODUCERS):  # and each producer's events in its own order
        assert [n for _, wk, n in seen if wk == w] == list(range(EACH))
