"""WAL flushes per acquire+release in ``bench_locks``'s contended phase on a durable
PostgreSQL cluster (its clients, ``--clients`` processes on one resource):
``pg_stat_wal``'s ``wal_sync`` and ``wal_records`` over the phase, warm-up included,
divided by the pairs counted. A count, so the machine's load does not move it.

    .venv/bin/python bench/lock_flushes.py [--seconds 2] [--clients 4]
"""

from __future__ import annotations

import argparse

import psycopg
from bench_locks import phase
from common import start_postgres

from agentos.store import schema

STATS = ("SELECT (SELECT wal_sync FROM pg_stat_wal), (SELECT wal_records FROM pg_stat_wal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with start_postgres(durable=True) as cluster:
        url = cluster.create_database("locks")
        schema.upgrade(url)
        with psycopg.connect(cluster.dsn("locks"), autocommit=True) as conn:
            conn.execute("SELECT pg_stat_reset_shared('wal')")
            before = conn.execute(STATS).fetchone()
            row = phase("db", args.clients, args.seconds,
                        lambda n: [url, "bench:shared", f"c{n}"])
            after = conn.execute(STATS).fetchone()
    assert before is not None and after is not None
    pairs = row["ops_per_s"] * args.seconds
    print(f"{args.clients} clients: {row['ops_per_s']:.0f} pairs/s, hand-over p50 "
          f"{row['handover_p50_ms']:.2f} ms; per pair: WAL flushes "
          f"{(after[0] - before[0]) / pairs:.2f}, WAL records "
          f"{(after[1] - before[1]) / pairs:.1f}")


if __name__ == "__main__":
    main()
