"""What a PostgreSQL write's round trips cost the client: the same write and its audit
row sent four ways, alternated in one process, on a durable cluster of its own.

    .venv/bin/python bench/pg_round_trips.py              # 2,000 writes a shape and round
    .venv/bin/python bench/pg_round_trips.py --n 500 --rounds 2

The shapes (each an insert that returns its id and a second insert, as a hot write and
its audit row):

- ``transaction``: BEGIN, the write, the audit row, COMMIT, four round trips on an
  async psycopg connection in autocommit (what ``Store.driver(hooked=True)`` sends);
- ``pipeline``: the same four in psycopg's pipeline mode;
- ``one statement``: both inserts in one statement (a CTE), autocommit, one round trip;
- ``one round trip``: BEGIN, both inserts and COMMIT as one simple-protocol query with
  the parameters bound by the client (psycopg's ``AsyncClientCursor``).

Reported per shape: the client process's CPU and the wall time a write, the median of
the rounds (the first 200 writes of each round are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import psycopg
from common import start_postgres

WRITE = "INSERT INTO hot (v) VALUES (%s) RETURNING id"
AUDIT = "INSERT INTO audit (v) VALUES (%s)"
WARMUP = 200


async def shapes(dsn: str) -> tuple[dict[str, Callable[[], Awaitable[None]]], list[object]]:
    db = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    bound = await psycopg.AsyncConnection.connect(dsn, autocommit=True,
                                                  cursor_factory=psycopg.AsyncClientCursor)
    await db.execute("CREATE TABLE hot (id bigserial PRIMARY KEY, v text)")
    await db.execute("CREATE TABLE audit (id bigserial PRIMARY KEY, v text)")

    async def transaction() -> None:
        async with db.transaction():
            row = await (await db.execute(WRITE, ("x",), prepare=True)).fetchone()
            await db.execute(AUDIT, (str(row[0]) if row else "",), prepare=True)

    async def pipeline() -> None:
        async with db.pipeline(), db.transaction():
            row = await (await db.execute(WRITE, ("x",), prepare=True)).fetchone()
            await db.execute(AUDIT, (str(row[0]) if row else "",), prepare=True)

    async def one_statement() -> None:
        await (await db.execute(
            "WITH w AS (INSERT INTO hot (v) VALUES (%s) RETURNING id) "
            "INSERT INTO audit (v) SELECT id::text FROM w RETURNING id", ("x",),
            prepare=True)).fetchone()

    async def one_round_trip() -> None:
        await bound.cursor().execute(f"BEGIN; {WRITE}; {AUDIT}; COMMIT", ("x", "y"))

    return ({"transaction": transaction, "pipeline": pipeline,
             "one statement": one_statement, "one round trip": one_round_trip},
            [db, bound])


async def measure(dsn: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    ways, connections = await shapes(dsn)
    spent: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for _ in range(rounds):
            for name, write in ways.items():
                for _ in range(WARMUP):
                    await write()
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(n):
                    await write()
                spent[name].append(((time.process_time() - cpu) / n,
                                    (time.perf_counter() - wall) / n))
    finally:
        for conn in connections:
            await conn.close()  # type: ignore[attr-defined]
    return {name: (statistics.median(c for c, _ in got), statistics.median(w for _, w in got))
            for name, got in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="writes a shape and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with start_postgres(durable=True) as cluster:
        cluster.create_database("round_trips")
        got = asyncio.run(measure(cluster.dsn("round_trips"), args.n, args.rounds))
    print(f"{'shape':16} {'client CPU us':>14} {'wall us':>9}")
    for name, (cpu, wall) in got.items():
        print(f"{name:16} {cpu * 1e6:14.0f} {wall * 1e6:9.0f}")


if __name__ == "__main__":
    main()
