"""The audit chain under concurrent writers: 4 processes (4 servers, as far as the
database can tell) append at once, each row in one of the three ways a server writes
one; the chain must not fork, skip or repeat a row.

Without the head-row lock, two appenders would read the same predecessor and
both chain to it: verify would report the second one's prev_hash as broken."""

import itertools
import subprocess
import sys
import uuid
from pathlib import Path

from agentos import audit
from agentos.store import open_store
from tests.crash.audit_appender import KINDS

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
EACH = 150


async def test_concurrent_appenders_keep_one_chain(database_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "tests.crash.audit_appender",
                               database_url, str(w), str(EACH)], cwd=ROOT)
             for w in range(WRITERS)]
    for p in procs:
        assert p.wait(timeout=90) == 0
    store = open_store(database_url)
    try:
        verdict = await audit.verify(store)
        rows, cursor = await audit.query(store, audit.Query(limit=audit.MAX_PAGE))
    finally:
        await store.close()
    assert verdict.intact, verdict
    assert verdict.checked == WRITERS * EACH == verdict.head_seq
    assert cursor is None
    # each row once (the rows riding in an event's append name the event as their
    # resource, so a row is told by the writer and number in its details)
    assert sorted((r["details"]["worker"], r["details"]["n"]) for r in rows) == [
        (w, n) for w in range(WRITERS) for n in range(EACH)]
    appended = [r for r in rows if r["details"]["n"] % KINDS != 1]
    assert all(uuid.UUID(r["resource_id"]) for r in appended)  # the appended event's id
    # the writers really did interleave (else this proved nothing about concurrency)
    order = [r["details"]["worker"] for r in sorted(rows, key=lambda r: r["seq"])]
    assert sum(a != b for a, b in itertools.pairwise(order)) > WRITERS
