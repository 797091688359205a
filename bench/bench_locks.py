"""Locks: acquire+release per second and hand-over latency, beside Redis and PostgreSQL.

For each AgentOS backend (SQLite file; durable PostgreSQL cluster), two ways in:
the Python API (``locks.acquire`` / ``locks.release`` in the client's process,
straight on the database) and HTTP (the SDK against one ``agentos`` server).
Each runs uncontended (1 client, its own resource) and contended (``--clients``
processes on ONE resource, each waiting in the queue). In the same run, the
peers: redis-py ``Lock`` on a local Redis (sleep=0.001 and the default 0.1) and
PostgreSQL ``pg_advisory_lock``/``unlock`` on the same durable cluster.

Hand-over latency: for every grant that went to a different client than the one
before, the time from the previous holder starting its release to the new
holder's acquire returning (one clock: all processes on this machine).

    .venv/bin/python bench/bench_locks.py                 # table, about 2 minutes
    .venv/bin/python bench/bench_locks.py --seconds 2 --json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    REPO,
    RedisServer,
    Server,
    bench_parser,
    child_env,
    machine_info,
    percentile,
    start_postgres,
)

Pairs = list[tuple[float, float]]  # (acquire returned, release started), wall clock


# ----------------------------------------------------------------- clients


def ready() -> tuple[float, float]:
    """Tell the parent this client is set up; it answers with the window to measure."""
    print("ready", flush=True)
    t_start, t_end = (float(x) for x in sys.stdin.readline().split())
    return t_start, t_end


def _timed(acquire: Callable[[], Any], release: Callable[[Any], None]) -> Pairs:
    pairs: Pairs = []
    t_start, t_end = ready()
    while time.time() < t_start:
        time.sleep(0.0005)
    while time.time() < t_end:
        held = acquire()
        got = time.time()
        if got >= t_end:
            release(held)
            break
        out = time.time()
        release(held)
        pairs.append((got, out))
    return pairs


def client_redis(resource: str, port: int, sleep: float) -> Pairs:
    import redis

    lock = redis.Redis(host="127.0.0.1", port=port).lock(resource, timeout=10, sleep=sleep)

    def acquire() -> None:
        assert lock.acquire(blocking=True, blocking_timeout=10)

    acquire()
    lock.release()
    return _timed(acquire, lambda _: lock.release())


def client_advisory(dsn: str) -> Pairs:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return _timed(lambda: conn.execute("SELECT pg_advisory_lock(424242)"),
                      lambda _: conn.execute("SELECT pg_advisory_unlock(424242)"))


def client_http(url: str, resource: str, owner: str) -> Pairs:
    from agentos.sdk import Client

    with Client(url) as client:
        def acquire() -> int:
            got = client.acquire_lock(resource, owner, ttl_s=30, wait_s=10)
            assert got.granted, got
            return int(got.token or 0)

        client.release_lock("bench:warm", owner,
                            int(client.acquire_lock("bench:warm", owner, wait_s=10).token or 0))
        return _timed(acquire, lambda token: client.release_lock(resource, owner, token))


async def client_db(url: str, resource: str, owner: str) -> Pairs:
    from agentos import locks
    from agentos.store import open_store

    store = open_store(url, pool_size=2)
    # a process that waits for locks on PostgreSQL listens, so grants made by other
    # processes wake it (the server does this in its event bus)
    listener = asyncio.create_task(store.listen([locks.CHANNEL]))
    claim = locks.Claim(owner, ttl_s=30)
    try:
        warm = await locks.acquire(store, "bench:warm", claim, wait_s=10)
        await locks.release(store, "bench:warm", owner, warm.grants[0].token)
        pairs: Pairs = []
        t_start, t_end = await asyncio.to_thread(ready)
        while time.time() < t_start:
            await asyncio.sleep(0.0005)
        while time.time() < t_end:
            got = await locks.acquire(store, resource, claim, wait_s=10)
            assert got.granted
            stamp = time.time()
            out = time.time()
            await locks.release(store, resource, owner, got.grants[0].token)
            if stamp < t_end:
                pairs.append((stamp, out))
        return pairs
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await store.close()


def run_client(kind: str, params: list[str]) -> None:
    """``--client KIND ...``: one client process; prints its pairs as JSON."""
    rest = params
    if kind == "redis":
        pairs = client_redis(rest[0], int(rest[1]), float(rest[2]))
    elif kind == "advisory":
        pairs = client_advisory(rest[0])
    elif kind == "http":
        pairs = client_http(rest[0], rest[1], rest[2])
    else:
        pairs = asyncio.run(client_db(rest[0], rest[1], rest[2]))
    print(json.dumps(pairs))


# ------------------------------------------------------------------ phases


def phase(kind: str, clients: int, seconds: float, args: Callable[[int], list[str]]
          ) -> dict[str, Any]:
    env = child_env({**os.environ, "AGENTOS_LOG_LEVEL": "warning"})
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--client", kind,
                               *args(n)], cwd=REPO, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE) for n in range(clients)]
    for p in procs:  # every client imported, connected and warmed up
        assert p.stdout is not None
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"a {kind} client failed to start")
    t_start = time.time() + 0.2
    window = f"{t_start} {t_start + seconds}\n".encode()
    per_client: list[Pairs] = []
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(window)
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        if p.returncode != 0:
            raise RuntimeError(f"a {kind} client exited with {p.returncode}")
        per_client.append([tuple(x) for x in json.loads(out)])  # type: ignore[misc]
    merged = sorted((got, out, n) for n, pairs in enumerate(per_client) for got, out in pairs)
    handovers = sorted(got - prev_out for (_, prev_out, a), (got, _, b)
                       in itertools.pairwise(merged) if a != b)
    total = sum(len(p) for p in per_client)
    return {"clients": clients, "ops_per_s": total / seconds,
            "per_client": [len(p) for p in per_client],
            "handovers": len(handovers),
            "handover_p50_ms": percentile(handovers, 50) * 1000 if handovers else None,
            "handover_p99_ms": percentile(handovers, 99) * 1000 if handovers else None}


def agentos_phases(backend: str, url: str, workdir: Path, seconds: float, clients: int
                   ) -> dict[str, Any]:
    from agentos.store import schema

    schema.upgrade(url)
    out: dict[str, Any] = {}
    out["python 1"] = phase("db", 1, seconds, lambda n: [url, "bench:solo", "solo"])
    out[f"python {clients}"] = phase("db", clients, seconds,
                                     lambda n: [url, "bench:shared", f"c{n}"])
    env = {**os.environ, "AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
           "AGENTOS_RUN_ROUTER": "false"}
    with Server("agentos.server:from_env", env, workdir) as server:
        out["http 1"] = phase("http", 1, seconds,
                              lambda n: [server.base_url, "bench:solo-http", "solo"])
        out[f"http {clients}"] = phase("http", clients, seconds,
                                       lambda n: [server.base_url, "bench:shared-http",
                                                  f"c{n}"])
    return out


def main() -> None:
    parser = bench_parser(__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase")
    parser.add_argument("--clients", type=int, default=4, help="contending processes")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.client:
        run_client(args.client, rest)
        return
    results: dict[str, Any] = {"machine": machine_info(), "seconds": args.seconds,
                               "command": " ".join(["python bench/bench_locks.py",
                                                    *sys.argv[1:]])}
    n = args.clients
    with tempfile.TemporaryDirectory(prefix="agentos-bench-locks-") as tmp:
        workdir = Path(tmp)
        rows: dict[str, dict[str, Any]] = {}
        with start_postgres(durable=True) as cluster:
            if "sqlite" in args.backends:
                for name, row in agentos_phases("sqlite", f"sqlite:///{workdir}/locks.db",
                                                workdir, args.seconds, n).items():
                    rows[f"agentos sqlite {name}"] = row
            if "postgres" in args.backends:
                url = cluster.create_database("locks")
                for name, row in agentos_phases("postgres", url, workdir, args.seconds,
                                                n).items():
                    rows[f"agentos postgres {name}"] = row
            dsn = cluster.dsn("postgres")
            rows["pg_advisory_lock 1"] = phase("advisory", 1, args.seconds, lambda _: [dsn])
            rows[f"pg_advisory_lock {n}"] = phase("advisory", n, args.seconds,
                                                  lambda _: [dsn])
        with RedisServer(workdir / "redis") as redis:
            results["redis_version"] = redis.version()
            for sleep in (0.001, 0.1):
                for clients in (1, n):
                    rows[f"redis Lock sleep={sleep} {clients}"] = phase(
                        "redis", clients, args.seconds,
                        lambda _, s=sleep: ["bench:redis", str(redis.port), str(s)])
    results["rows"] = rows
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print_table(results, n)


def print_table(results: dict[str, Any], n: int) -> None:
    rows = results["rows"]
    redis1 = rows["redis Lock sleep=0.001 1"]["ops_per_s"]
    redis_n = rows[f"redis Lock sleep=0.001 {n}"]["ops_per_s"]
    pg1 = rows["pg_advisory_lock 1"]["ops_per_s"]
    pg_n = rows[f"pg_advisory_lock {n}"]["ops_per_s"]
    print(f"locks: acquire+release per second, {results['seconds']:g} s per phase "
          f"({results['command']})")
    print(f"{'case':40} {'ops/s':>9} {'x redis':>8} {'x pg adv':>9} "
          f"{'hand-over p50':>14} {'p99 ms':>8}")
    for name, row in rows.items():
        one = row["clients"] == 1
        vs_redis = row["ops_per_s"] / (redis1 if one else redis_n)
        vs_pg = row["ops_per_s"] / (pg1 if one else pg_n)
        p50 = f"{row['handover_p50_ms']:.2f}" if row["handover_p50_ms"] is not None else "-"
        p99 = f"{row['handover_p99_ms']:.2f}" if row["handover_p99_ms"] is not None else "-"
        print(f"{name:40} {row['ops_per_s']:9.0f} {vs_redis:8.2f} {vs_pg:9.2f} "
              f"{p50:>14} {p99:>8}")
    print("ratios: against the peer with the same number of clients "
          "(redis: sleep=0.001); hand-over: previous holder's release start -> "
          "next holder's grant, different clients only")


if __name__ == "__main__":
    main()
