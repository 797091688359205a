"""The audit log: append-only in the database, and any change made anyway shows as the
first broken link of the chain."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from agentos import audit
from agentos.store import Store, sync_url


def entry(n: int, **kw: object) -> audit.Entry:
    return audit.Entry(actor=f"user:u{n % 3}", action="tasks.cancel", resource_type="tasks",
                       resource_id=f"t{n}", details={"n": n, "note": "ünïcode"},
                       actor_role="operator", ip="127.0.0.1", user_agent="test", **kw)  # type: ignore[arg-type]


@contextmanager
def raw(url: str) -> Iterator[Connection]:
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def tamper(url: str, statement: str) -> None:
    """Change the log behind the database's own guard, as an intruder with DDL rights could."""
    with raw(url) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text(statement))


async def fill(store: Store, n: int = 5) -> None:
    for i in range(1, n + 1):
        assert await audit.record(store, entry(i)) == i


async def test_an_untouched_chain_is_intact(store: Store) -> None:
    empty = await audit.verify(store)
    assert (empty.intact, empty.checked, empty.head_hash) == (True, 0, audit.GENESIS)
    await fill(store)
    verdict = await audit.verify(store)
    assert (verdict.intact, verdict.checked, verdict.head_seq) == (True, 5, 5)
    rows, _ = await audit.query(store, audit.Query(limit=10))
    assert [r["seq"] for r in rows] == [5, 4, 3, 2, 1]
    assert rows[-1]["prev_hash"] == audit.GENESIS
    assert all(a["prev_hash"] == b["hash"] for a, b in itertools.pairwise(rows))


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'user:x' WHERE seq = 2",
                                       "DELETE FROM audit_log WHERE seq = 2"])
async def test_the_database_refuses_to_change_a_row(store: Store, database_url: str,
                                                    statement: str) -> None:
    await fill(store, 3)
    with pytest.raises(DBAPIError, match="append-only"), raw(database_url) as conn:
        conn.execute(text(statement))
    assert (await audit.verify(store)).intact


@pytest.mark.parametrize("statement,seq,reason", [
    ("UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 3", 3, "content"),
    ("UPDATE audit_log SET details = '{\"n\": 99}' WHERE seq = 2", 2, "content"),
    ("UPDATE audit_log SET outcome = 'denied' WHERE seq = 4", 4, "content"),
    ("UPDATE audit_log SET hash = prev_hash WHERE seq = 1", 1, "content"),
    ("UPDATE audit_log SET prev_hash = hash WHERE seq = 2", 2, "prev_hash"),
    ("DELETE FROM audit_log WHERE seq = 3", 3, "missing"),
    ("DELETE FROM audit_log WHERE seq = 5", 5, "ends at 4"),
])
async def test_tampering_shows_as_the_first_broken_link(
        store: Store, database_url: str, statement: str, seq: int, reason: str) -> None:
    await fill(store)
    tamper(database_url, statement)
    verdict = await audit.verify(store)
    assert not verdict.intact
    assert verdict.broken_seq == seq and reason in str(verdict.reason), verdict


async def test_filters_and_pages(store: Store) -> None:
    await fill(store, 9)
    await audit.record(store, entry(10, outcome=audit.Outcome.DENIED))
    page, cursor = await audit.query(store, audit.Query(actor="user:u1", limit=2))
    assert [r["seq"] for r in page] == [10, 7] and cursor == 7
    page, cursor = await audit.query(store, audit.Query(actor="user:u1", before_seq=cursor))
    assert [r["seq"] for r in page] == [4, 1] and cursor is None
    denied, _ = await audit.query(store, audit.Query(outcome=audit.Outcome.DENIED))
    assert [r["seq"] for r in denied] == [10]
    one, _ = await audit.query(store, audit.Query(resource_type="tasks", resource_id="t3"))
    assert [r["details"] for r in one] == [{"n": 3, "note": "ünïcode"}]


async def test_a_rolled_back_change_leaves_no_row(store: Store) -> None:
    store.before_commit(audit.flush)  # as the app does
    with audit.request_scope():
        audit.expect(entry(1))
        with pytest.raises(RuntimeError):
            async with store.write():
                raise RuntimeError("the change failed")
        assert (await audit.verify(store)).checked == 0
        async with store.write():
            pass  # the next commit of the request carries it
        async with store.write():
            pass  # and only the first
    assert (await audit.verify(store)).checked == 1
