"""The claim reads the claim-order indexes, not the backlog (SQLite's plans).

SQLite plans without statistics and takes an equality on any indexed column as
selective: when the lists' (status, seq) index came, both claim statements chose it
and read every pending (and scheduled) task, 0.3 ms -> 110-180 ms a claim with 50,000
of each. The statements name their indexes; this holds them to it.
"""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from agentos import queue
from agentos.store import Store
from agentos.store.tasks import _sqlite_statements
from agentos.tasks import TaskIn
from tests.contract.test_queue import agent


def plan(db: sqlite3.Connection, statement: str, **params: object) -> str:
    return " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, params))


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("agents", [False, True])
async def test_the_claim_reads_its_partial_indexes_with_a_backlog(
        store: Store, database_url: str, agents: bool) -> None:
    # Given a backlog of ready and of future tasks
    await agent(store)
    later = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(3):
        await queue.submit(store, [TaskIn(agent="a") for _ in range(500)])
        await queue.submit(store, [TaskIn(agent="a", run_at=later) for _ in range(500)])
    # When SQLite plans the claim's statements (as sent on its own connection)
    promote, pick, _take = _sqlite_statements("tasks_claim", agents=agents, driver=True)
    db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    params = {"now": "2026-01-01T00:00:00.000000+00:00", "n": 16, "agents": '["a"]'}
    try:
        promoting, picking = plan(db, promote, **params), plan(db, pick, **params)
    finally:
        db.close()
    # Then each reads its own partial index, in the order it needs
    assert "USING INDEX ix_tasks_run_at" in promoting, promoting
    index = "ix_tasks_agent_claim_order" if agents else "ix_tasks_claim_order"
    assert f"SEARCH t USING INDEX {index}" in picking or \
        f"SCAN t USING INDEX {index}" in picking, picking
    if not agents:  # (several named agents' entries are merged by a sort)
        assert "TEMP B-TREE" not in picking, picking  # no sort of the candidates


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("name", ["tasks_complete", "tasks_heartbeat"])
async def test_a_batch_finds_its_running_tasks_by_id(store: Store, database_url: str,
                                                      name: str) -> None:
    # Given running tasks (the planner would take the (status, seq) index for status =
    # 'running' and read every running task once for each item of the batch)
    await agent(store)
    await queue.submit(store, [TaskIn(agent="a") for _ in range(200)])
    from agentos import claims

    await claims.claim(store, "w", limit=200)
    # When SQLite plans the statement that ends (or renews) a batch of them
    statement = _sqlite_statements(name, driver=True)[0]
    db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    try:
        planned = plan(db, statement, batch="[]", now="x", lease="x")
    finally:
        db.close()
    # Then it reads the batch and finds each row through the unique id index
    assert "ix_tasks_status_seq" not in planned, planned
    assert planned.index("json_each") < planned.index("(id=?)"), planned


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_large_claim_reads_the_claim_order_index_on_postgres(store: Store) -> None:
    # Given a backlog of a few thousand ready tasks, analyzed as the reaper does after a
    # burst (agent_versions, small, is not)
    from sqlalchemy import text

    from agentos.store.tasks import _pg_claim_text

    await agent(store)
    for _ in range(3):
        await queue.submit(store, [TaskIn(agent="a") for _ in range(1000)])
    async with store.write() as conn:
        await conn.execute(text("ANALYZE tasks"))
    # When PostgreSQL plans a claim of 144 (a worker claiming ahead under load)
    async with store.read() as conn:
        planned = "\n".join(row[0] for row in (await conn.execute(
            text("EXPLAIN " + _pg_claim_text("tasks_claim", False, 144)),
            {"worker_id": "w", "lease_s": 30.0})).all())
    # Then it reads the first entries of the claim-order index, not every pending task
    # (a join's estimate had it scan and sort the backlog: 5 ms a claim at 5,000)
    picked = planned[planned.index("CTE picked"):planned.index("CTE claimed")]
    assert "ix_tasks_claim_order" in picked and "Sort" not in picked, planned
