"""Where a hand-over's time goes: one process, two stores, the waiter's listening (its
store is not the releaser's, so only what crosses between processes wakes it: NOTIFY
on PostgreSQL, the wake-up socket on SQLite; ``sqlite-stamp``: SQLite without a
listener, woken by the change stamp's poll). Stamps per hand-over:
  t0 release called, t1 release returned (committed), tw the waiter's first sign
  (the notification delivered to its store, or the change stamp seen to differ),
  tp0/tp1 the waiter's extra read (_peek), tr the waiter's acquire returned.
``looks``: CPU per waiter's look (``waiting._peek``) instead, best of 3 x 1,000.
``--statements`` (SQLite): each statement the release call sends on SQLite's own
connection, timed (the releaser's transaction, statement by statement)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentos import locks
from agentos.locks import Claim, waiting
from agentos.store import open_store, schema

R = "bench:handover"
cur: dict[str, float] = {}
statements: dict[str, list[float]] = defaultdict(list)  # --statements: the release's


class Timed:
    """SQLite's own connection, each statement of a release call timed."""

    def __init__(self, db) -> None:
        self._db = db

    def __getattr__(self, name):
        return getattr(self._db, name)

    def execute(self, statement, *args):
        return self._timed(self._db.execute, statement, args)

    def executemany(self, statement, *args):
        return self._timed(self._db.executemany, statement, args)

    def _timed(self, run, statement, args):
        start = time.perf_counter()
        try:
            return run(statement, *args)
        finally:
            if "t0" in cur and "t1" not in cur:
                statements[" ".join(statement.split()[:3])[:40]].append(
                    time.perf_counter() - start)


def instrument(waiter_store) -> None:
    orig_wake = waiter_store.wake

    def wake(channel, note=""):
        if channel == locks.CHANNEL and "tw" not in cur and "t0" in cur:
            cur["tw"] = time.perf_counter()
        return orig_wake(channel, note)

    waiter_store.wake = wake
    if hasattr(waiter_store, "_woken"):  # SQLite: another store's line on the socket
        orig_woken = waiter_store._woken

        def woken(channel, note):
            if "tw" not in cur and "t0" in cur:
                cur["tw"] = time.perf_counter()
            return orig_woken(channel, note)

        waiter_store._woken = woken
        waiter_store._wakes._deliver = woken
    orig_stamp = waiter_store.change_stamp
    last: list[object] = [None]

    def change_stamp():
        s = orig_stamp()
        if "t1" in cur and "tw" not in cur and s != last[0]:
            cur["tw"] = time.perf_counter()
        last[0] = s
        return s

    waiter_store.change_stamp = change_stamp
    orig_peek = waiting._peek

    async def peek(store, name, owner):
        if "t0" in cur:
            cur.setdefault("tp0", time.perf_counter())
            cur["peeks"] = cur.get("peeks", 0) + 1
        got = await orig_peek(store, name, owner)
        if "t0" in cur:
            cur["tp1"] = time.perf_counter()
        return got

    waiting._peek = peek


async def measure(url: str, n: int, listen: bool, timed: bool = False
                  ) -> list[dict[str, float]]:
    holder, waiter = open_store(url, pool_size=2), open_store(url, pool_size=2)
    instrument(waiter)
    if timed:
        connect = holder._connect_driver
        holder._connect_driver = lambda *a, **k: Timed(connect(*a, **k))
    listener = asyncio.create_task(waiter.listen([locks.CHANNEL])) if listen else None
    out = []
    try:
        while listen and locks.CHANNEL not in waiter.listening:
            await asyncio.sleep(0.01)
        for i in range(n + 20):
            cur.clear()
            grant = (await locks.acquire(holder, R, Claim("a"))).grants[0]
            wait = asyncio.create_task(locks.acquire(waiter, R, Claim("b"), wait_s=10))
            while not (await locks.get(holder, R))["queue"]:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.005)  # the waiter is parked on its wake-up
            cur["t0"] = time.perf_counter()
            await locks.release(holder, R, "a", grant.token)
            cur["t1"] = time.perf_counter()
            got = await wait
            cur["tr"] = time.perf_counter()
            await locks.release(waiter, R, "b", got.grants[0].token)
            if i >= 20:
                out.append(dict(cur))
            elif i == 19:
                statements.clear()  # warm-up's
        return out
    finally:
        if listener:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await holder.close()
        await waiter.close()


def report(name: str, rows: list[dict[str, float]]) -> None:
    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000

    parts = {
        "release call (t0->t1)": [r["t1"] - r["t0"] for r in rows],
        "commit -> waiter's sign (t1->tw)": [r["tw"] - r["t1"] for r in rows if "tw" in r],
        "sign -> return, no read": [r["tr"] - r["tw"] for r in rows
                                    if "tw" in r and "tp0" not in r],
        "sign -> read start (tw->tp0)": [r["tp0"] - r["tw"] for r in rows
                                         if "tw" in r and "tp0" in r],
        "the extra read (tp0->tp1)": [r["tp1"] - r["tp0"] for r in rows if "tp0" in r],
        "read -> return (tp1->tr)": [r["tr"] - r["tp1"] for r in rows if "tp0" in r],
        "total (t0->tr)": [r["tr"] - r["t0"] for r in rows],
    }
    reads = sum(1 for r in rows if "tp0" in r)
    print(f"{name}: n={len(rows)}, hand-overs with an extra read {reads}, "
          f"load {os.getloadavg()[0]:.1f}")
    for k, xs in parts.items():
        if xs:
            print(f"  {k:36} n={len(xs):4} p50 {q(xs, 50):6.2f}  p90 {q(xs, 90):6.2f}  "
                  f"p99 {q(xs, 99):6.2f}  mean {statistics.mean(xs) * 1000:6.2f} ms")


def report_statements(n: int) -> None:
    print("  the release call's statements on SQLite's connection (per hand-over: count, "
          "p50 and mean of each, us)")
    for name, xs in sorted(statements.items(), key=lambda kv: -sum(kv[1])):
        xs.sort()
        print(f"    {len(xs) / n:4.1f} x p50 {xs[len(xs) // 2] * 1e6:6.1f}  mean "
              f"{statistics.mean(xs) * 1e6:6.1f}  {name}")
    total = sum(sum(xs) for xs in statements.values()) / n
    print(f"    total {total * 1e6:.0f} us a release call")


async def looks(url: str) -> None:
    store = open_store(url, pool_size=2)
    try:
        await locks.acquire(store, R, Claim("a"))
        for _ in range(200):
            await waiting._peek(store, R, "a")
        best = min([await _cpu_of_looks(store) for _ in range(3)])
        print(f"{url.split(':')[0]}: {best * 1e6 / 1000:.0f} us CPU per look")
    finally:
        await store.close()


async def _cpu_of_looks(store) -> float:
    start = time.process_time()
    for _ in range(1000):
        await waiting._peek(store, R, "a")
    return time.process_time() - start


def main() -> None:
    if sys.argv[1:2] == ["looks"]:
        from common import start_postgres
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/h.db"
            schema.upgrade(url)
            asyncio.run(looks(url))
        with start_postgres(durable=False) as cluster:
            url = cluster.create_database("looks")
            schema.upgrade(url)
            asyncio.run(looks(url))
        return
    timed = "--statements" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--statements"]
    n = int(args[0]) if args else 200
    backends = args[1].split(",") if len(args) > 1 else ["sqlite", "postgres"]
    for backend in ("sqlite", "sqlite-stamp"):
        if backend not in backends:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/h.db"
            schema.upgrade(url)
            statements.clear()
            report(backend, asyncio.run(measure(url, n, backend == "sqlite", timed)))
            if timed:
                report_statements(n)
    if "postgres" in backends:
        from common import start_postgres
        with start_postgres(durable=True) as cluster:
            url = cluster.create_database("handover")
            schema.upgrade(url)
            report("postgres (durable)", asyncio.run(measure(url, n, listen=True)))


if __name__ == "__main__":
    main()
