"""The peers of bench_workflows.py, run in their own venv (bench/.workflow-peers-venv, made
by `make bench`): DBOS Transact and Prefect 3, the same four measurements as ours.

    python workflow_peers.py dbos URL RUNS FAN SEQUENTIAL     # prints one JSON object
    python workflow_peers.py prefect API_URL RUNS FAN SEQUENTIAL

DBOS runs in this process on its system database (``sqlite:///...`` or PostgreSQL),
its workflows on its own executor threads; a workflow of ten steps calls ten
``@DBOS.step`` no-ops; the fan-out starts 1,000 child workflows of one step each and
waits for them all. Prefect runs flows in this process against its local API server
(started by bench_workflows.py); a flow of ten ``@task`` no-ops, a fan-out as
``task.map`` over 1,000 items.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FIRST_STEP: dict[str, float] = {}
_lock = threading.Lock()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        k = (len(ordered) - 1) * p / 100
        lo = int(k)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    return {"p50_ms": round(at(50) * 1000, 2), "p99_ms": round(at(99) * 1000, 2)}


def measure(run_linear: Callable[[str], None], start_many: Callable[[int], None],
            run_fan: Callable[[int], None], bare_step: Callable[[], None], runs: int,
            fan: int, sequential: int) -> dict[str, Any]:
    """The four figures, from callables that run the peer's workflows."""
    for _ in range(3):  # warm up
        run_linear("warm")
        bare_step()
    bare = []
    for _ in range(sequential):
        t = time.perf_counter()
        bare_step()
        bare.append(time.perf_counter() - t)
    lone, first = [], []
    for i in range(sequential):
        mark = f"seq-{i}"
        t0 = time.time()
        run_linear(mark)
        lone.append(time.time() - t0)
        first.append(FIRST_STEP[mark] - t0)
    t = time.perf_counter()
    start_many(runs)
    concurrent_s = time.perf_counter() - t
    t = time.perf_counter()
    run_fan(fan)
    fan_s = time.perf_counter() - t
    per_step = statistics.median(lone) / 10
    return {
        "bare_step_ms": round(statistics.median(bare) * 1000, 3),
        "linear_one_ms": round(statistics.median(lone) * 1000, 2),
        "step_ms": round(per_step * 1000, 3),
        "linear_runs_per_s": round(runs / concurrent_s, 1),
        "fan_out_s": round(fan_s, 3),
        "start_to_first_step": _percentiles(first),
    }


def dbos_main(url: str, runs: int, fan: int, sequential: int) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    config: DBOSConfig = {"name": "bench-workflows", "system_database_url": url,
                          "max_executor_threads": 64}
    DBOS(config=config)

    @DBOS.step()
    def noop(i: int, mark: str | None = None) -> int:
        if mark is not None:
            with _lock:
                FIRST_STEP.setdefault(mark, time.time())
        return i

    @DBOS.workflow()
    def linear(mark: str) -> int:
        total = 0
        for i in range(10):
            total += noop(i, mark if i == 0 else None)
        return total

    @DBOS.workflow()
    def child(i: int) -> int:
        return noop(i)

    @DBOS.workflow()
    def fan_out(n: int) -> int:
        handles = [DBOS.start_workflow(child, i) for i in range(n)]
        return sum(h.get_result() for h in handles)

    DBOS.launch()
    try:
        def start_many(n: int) -> None:
            handles = [DBOS.start_workflow(linear, f"many-{i}") for i in range(n)]
            for h in handles:
                h.get_result()

        return measure(lambda mark: linear(mark), start_many, lambda n: fan_out(n),
                       lambda: child(0), runs, fan, sequential)
    finally:
        DBOS.destroy()


def prefect_main(api_url: str, runs: int, fan: int, sequential: int) -> dict[str, Any]:
    import os

    os.environ["PREFECT_API_URL"] = api_url
    from prefect import flow, task

    @task
    def noop(i: int, mark: str | None = None) -> int:
        if mark is not None:
            with _lock:
                FIRST_STEP.setdefault(mark, time.time())
        return i

    @flow
    def linear(mark: str) -> int:
        return sum(noop(i, mark if i == 0 else None) for i in range(10))

    @flow
    def fan_out(n: int) -> int:
        return sum(f.result() for f in noop.map(range(n)))

    @flow
    def bare() -> int:
        return noop(0)

    def start_many(n: int) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: linear(f"many-{i}"), range(n)))

    return measure(lambda mark: linear(mark), start_many, lambda n: fan_out(n),
                   lambda: bare(), runs, fan, sequential)


if __name__ == "__main__":
    peer, target, runs_, fan_, sequential_ = sys.argv[1:6]
    main = dbos_main if peer == "dbos" else prefect_main
    print(json.dumps(main(target, int(runs_), int(fan_), int(sequential_))), flush=True)
