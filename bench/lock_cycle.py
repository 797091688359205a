"""Where an uncontended lock cycle's time goes on PostgreSQL (issue 21 targets 3 and 5).

One client process (this one) acquires and releases one resource through the Python
API (``locks.acquire`` / ``locks.release``, listening as ``bench_locks``'s clients do),
on a fresh durable cluster (fsync and synchronous_commit on). Reported per cycle: the
wall time, this process's CPU, each PostgreSQL process's CPU (read from /proc), and
per statement the database's execution and planning time (pg_stat_statements). Then,
for scale on the same cluster, one connection's loop of ``SELECT 1``, of a one-row
insert committed durably, and of the same insert with ``synchronous_commit=off``: what
a round trip and a durable commit cost there by themselves.

    python bench/lock_cycle.py [--n 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from common import PostgresCluster, start_postgres

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cluster_cpu(cluster: PostgresCluster) -> dict[str, float]:
    """CPU seconds of the postmaster and each of its children, by pid and title."""
    out: dict[str, float] = {}
    root = str(cluster.postmaster)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if entry.name == root or fields[1] == root:
            key = f"{entry.name} {title[:60]}"
            out[key] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


async def cycles(url: str, n: int, cluster: PostgresCluster) -> dict[str, Any]:
    from agentos import locks
    from agentos.store import open_store

    store = open_store(url, pool_size=2)
    listener = asyncio.create_task(store.listen([locks.CHANNEL]))
    claim = locks.Claim("solo", ttl_s=30)
    try:
        for _ in range(200):  # warm: the statements prepared, the caches full
            got = await locks.acquire(store, "bench:solo", claim, wait_s=10)
            await locks.release(store, "bench:solo", "solo", got.grants[0].token)
        cluster.psql("SELECT pg_stat_statements_reset()", "locks")
        before = cluster_cpu(cluster)
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(n):
            got = await locks.acquire(store, "bench:solo", claim, wait_s=10)
            await locks.release(store, "bench:solo", "solo", got.grants[0].token)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = cluster_cpu(cluster)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await store.close()
    processes = sorted(((after[k] - before.get(k, 0.0)) / n * 1e6, k) for k in after)
    return {"cycles_per_s": n / wall, "wall_us": wall / n * 1e6, "client_cpu_us": cpu / n * 1e6,
            "processes": [(us, k) for us, k in reversed(processes) if us >= 1]}


def statements(cluster: PostgresCluster) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(cluster.dsn("locks")) as conn:
        return list(conn.execute(
            "SELECT calls, total_exec_time * 1000 / calls, "
            "total_plan_time * 1000 / greatest(plans, 1), plans, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_statements "
            "WHERE calls > 100 ORDER BY total_exec_time DESC LIMIT 6"))


def references(cluster: PostgresCluster, n: int) -> list[tuple[str, float, float]]:
    """(what, wall µs, backend CPU µs) of one connection's loop of each reference."""
    import psycopg

    out = []
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        backend = f"{conn.info.backend_pid} "
        conn.execute("CREATE TABLE IF NOT EXISTS reference (id bigserial PRIMARY KEY, v text)")
        for what, setting, query in (
                ("SELECT 1", "on", "SELECT 1"),
                ("one-row insert, durable commit", "on", "INSERT INTO reference (v) VALUES ('x')"),
                ("one-row insert, synchronous_commit=off", "off",
                 "INSERT INTO reference (v) VALUES ('x')")):
            conn.execute(f"SET synchronous_commit = {setting}")
            for _ in range(200):
                conn.execute(query, prepare=True)

            def backend_cpu() -> float:
                return next(v for k, v in cluster_cpu(cluster).items() if k.startswith(backend))
            cpu, start = backend_cpu(), time.perf_counter()
            for _ in range(n):
                conn.execute(query, prepare=True)
            out.append((what, (time.perf_counter() - start) / n * 1e6,
                        (backend_cpu() - cpu) / n * 1e6))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="acquire+release cycles")
    args = parser.parse_args()
    from agentos.store import schema

    with start_postgres(durable=True, settings=("shared_preload_libraries=pg_stat_statements",
                                                "pg_stat_statements.track_planning=on")
                        ) as cluster:
        url = cluster.create_database("locks")
        cluster.psql("CREATE EXTENSION pg_stat_statements", "locks")
        schema.upgrade(url)
        found = asyncio.run(cycles(url, args.n, cluster))
        print(f"uncontended acquire+release, {args.n} cycles: {found['cycles_per_s']:,.0f}/s; "
              f"a cycle: wall {found['wall_us']:.0f} µs, this process's CPU "
              f"{found['client_cpu_us']:.0f} µs")
        print("PostgreSQL's CPU a cycle, by process:")
        for us, process in found["processes"]:
            print(f"  {us:6.0f} µs  {process}")
        print("statements (pg_stat_statements): calls, execution µs, planning µs, plans")
        for calls, exec_us, plan_us, plans, query in statements(cluster):
            print(f"  {calls:6d} {exec_us:7.0f} {plan_us:7.0f} {plans:5d}  {query}")
        print("references, one connection's loop on the same cluster: wall / backend CPU")
        for what, wall, cpu in references(cluster, args.n):
            print(f"  {what:40s} {wall:5.0f} / {cpu:4.0f} µs")


if __name__ == "__main__":
    main()
