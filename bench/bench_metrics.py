"""Benchmark: metrics on SQLite and PostgreSQL, reported as ratios.

1. Ingestion, in one process: samples recorded through ``ctx.metrics`` (the handler's
   wrapper around the process's buffer: ``count`` with the agent's tag, ``observe``)
   beside ``prometheus-client``'s in-process counter and histogram (a child bound to its
   labels once: the floor), then the same samples written (the buffer's flush: one
   upsert per series and minute and hour); and over HTTP, ``POST /api/v1/metrics`` in
   batches of 1,000 samples to a real server, one request at a time.
2. A p95 query over 24 hours of ``--samples`` (10,000,000) histogram samples in 10 series
   (an agent each): the rollups are made directly (a pool of log-normal samples, each
   minute of each series a window of it, aggregated into the minute's rollup), then
   ``query.run`` asks for the p95 of all series over the 24 h (the hourly rollups and
   the ragged minutes), per hour, per agent, and per minute; median of 5 of each.
3. The extra cost per task of the automatic metrics in bench_tasks' drain: ``--tasks``
   no-op tasks drained by two ``agentos worker --burst`` processes, alone and beside a
   process running the server's metrics loop (folding the task events into rollups
   while they drain), alternately, ``--runs`` times each; then the folded
   ``tasks.ended`` is checked against the tasks. Tracing is off (its cost when unset is
   a null context per attempt, in both).

The machine's two cores are shared with other engineers' work: the load average before
and after each part is reported, and the drains alternate so that a load change does not
favour one side.

    .venv/bin/python bench/bench_metrics.py
    .venv/bin/python bench/bench_metrics.py --samples 1000000 --tasks 2000 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_tasks import AGENT, Database, _outcome, agentos_command, fresh_database
from common import Server, bench_parser, code_state, machine_info, start_postgres, worker_env

from agentos import metrics, queue
from agentos.metrics import buckets, query
from agentos.metrics.recorder import Agg, write
from agentos.store import Store, open_store
from agentos.tasks import TaskIn
from agentos.worker.handlers.context import HandlerMetrics

SERIES = 10  # agents the query's samples are spread over
MINUTES = 24 * 60
POOL = 200_000  # distinct log-normal samples the windows are cut from
QUERY_RUNS = 5
HTTP_BATCH = 1000
LOOP_CODE = """
import asyncio, sys
from agentos.metrics import automatic, query
from agentos.store import open_store
from agentos import metrics

async def main():
    store = open_store(sys.argv[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await asyncio.gather(automatic.run(store, stop, query.Retention()),
                         metrics.run_flusher(store, stop))
    await store.close()

asyncio.run(main())
"""


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ================================================================ ingestion


def ingest_prometheus(n: int) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client import Counter as PCounter

    registry = CollectorRegistry()
    counter = PCounter("bench_done", "done", ["agent"], registry=registry).labels("a")
    histogram = Histogram("bench_ms", "ms", ["agent"], registry=registry).labels("a")
    started = time.perf_counter()
    for _ in range(n):
        counter.inc()
    counted = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        histogram.observe(i % 1000)
    observed = time.perf_counter() - started
    return {"count_per_s": n / counted, "observe_per_s": n / observed}


async def ingest_ours(store: Store, n: int) -> dict[str, float]:
    rec = metrics.of(store)
    ctx_metrics = HandlerMetrics(store, "bench-agent")
    started = time.perf_counter()
    for _ in range(n):
        ctx_metrics.count("bench.done")
    counted = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        ctx_metrics.observe("bench.ms", i % 1000, tags={"kind": "k"})
    observed = time.perf_counter() - started
    pending = rec.pending()
    started = time.perf_counter()
    await rec.flush()
    flushed = time.perf_counter() - started
    return {"count_per_s": n / counted, "observe_per_s": n / observed,
            "flush_s": flushed, "flushed_entries": pending,
            "with_flush_per_s": 2 * n / (counted + observed + flushed)}


def ingest_http(url: str, workdir: Path, batches: int) -> dict[str, float]:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update({"AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
                "AGENTOS_RUN_PROJECTIONS": "false", "AGENTOS_RUN_METRICS": "false"})
    with Server("agentos.server:from_env", env, workdir) as server:
        body = {"samples": [{"name": "remote.ms", "kind": "histogram", "value": i % 500,
                             "tags": {"agent": f"a{i % 10}"}} for i in range(HTTP_BATCH)]}
        with httpx.Client(base_url=server.base_url, timeout=60,
                          headers={"Authorization": f"Bearer {server.token}"}) as http:
            http.post("/api/v1/metrics", json=body).raise_for_status()  # warm up
            started = time.perf_counter()
            for _ in range(batches):
                http.post("/api/v1/metrics", json=body).raise_for_status()
            took = time.perf_counter() - started
    return {"samples_per_s": batches * HTTP_BATCH / took, "batches": batches}


# ================================================================== queries


async def make_rollups(store: Store, samples: int, end: int) -> dict[str, Any]:
    """``samples`` spread evenly over 24 h x SERIES, aggregated per minute."""
    rng = random.Random(20261206)
    pool = [rng.lognormvariate(4.0, 0.8) for _ in range(POOL)]
    pool_idx = [buckets.index(v) for v in pool]
    per_minute = samples // (SERIES * MINUTES)
    start = end - MINUTES * 60
    started = time.perf_counter()
    written = 0
    for s in range(SERIES):
        taken: dict[Any, Agg] = {}
        tags = (("agent", f"agent-{s}"),)
        for m in range(MINUTES):
            at = rng.randrange(0, POOL - per_minute)
            window = pool[at:at + per_minute]
            agg = Agg(count=len(window), sum=math.fsum(window), min=min(window),
                      max=max(window), last=window[-1],
                      hist=dict(Counter(pool_idx[at:at + per_minute])))
            taken[("bench.latency_ms", "histogram", tags, start + m * 60)] = agg
            written += len(window)
        await write(store, taken)
    ordered = sorted(pool)
    return {"samples": written, "seconds": time.perf_counter() - started,
            "pool_p95": ordered[int(0.95 * len(ordered)) - 1]}


async def time_query(store: Store, q: query.Query) -> dict[str, Any]:
    took = []
    answer: dict[str, Any] = {}
    for _ in range(QUERY_RUNS):
        started = time.perf_counter()
        answer = await query.run(store, q, query.Retention())
        took.append((time.perf_counter() - started) * 1000)
    points = sum(len(g["points"]) for g in answer["groups"])
    first = answer["groups"][0]["points"][0]["value"] if answer["groups"] else None
    return {"ms_median": statistics.median(took), "ms_max": max(took), "points": points,
            "resolutions": answer.get("resolutions"), "value": first}


async def measure_queries(url: str, samples: int) -> dict[str, Any]:
    store = open_store(url)
    try:
        end = int(time.time()) // 60 * 60
        made = await make_rollups(store, samples, end)
        since = datetime.fromtimestamp(end - MINUTES * 60 + 30, UTC)  # ragged at both ends
        until = datetime.fromtimestamp(end - 30, UTC)
        name = "bench.latency_ms"
        cases = {
            "p95, 24 h, all series": query.Query(name, since, until, agg="p95"),
            "p95 per hour, 24 h": query.Query(name, since, until, agg="p95", bucket="1h"),
            "p95 by agent, 24 h": query.Query(name, since, until, agg="p95",
                                              group_by="agent"),
            "p99 per minute, 24 h, one agent": query.Query(
                name, since, until, agg="p99", bucket="1m", tags={"agent": "agent-3"}),
            "count, 24 h": query.Query(name, since, until, agg="count"),
        }
        timed = {label: await time_query(store, q) for label, q in cases.items()}
    finally:
        await store.close()
    return {"rollups": made, "queries": timed}


# =========================================================== per-task cost


def drain(db: Database, tasks: int, workdir: Path, with_metrics: bool) -> dict[str, Any]:
    asyncio.run(_submit(db.url, tasks))
    env = worker_env(db.url)
    log = (workdir / "drain.log").open("ab")
    folder = None
    folder_cpu0 = 0.0
    if with_metrics:  # started, and its start-up over, before the workers start
        folder = subprocess.Popen([sys.executable, "-c", LOOP_CODE, db.url], env=env,
                                  stdout=subprocess.PIPE, stderr=log)
        assert folder.stdout is not None
        assert folder.stdout.readline().strip() == b"ready"
        time.sleep(1.5)  # its first batch (the submits' events) and depth sample
        folder_cpu0 = _cpu_s(folder.pid)
    spawned = time.time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = [subprocess.Popen([*agentos_command(), "worker", "--burst", "--concurrency",
                                 "16", "--id", f"bench-{i}-{spawned}"], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT) for i in range(2)]
    for w in workers:
        w.wait(timeout=900)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, reaped
    workers_cpu = (children.ru_utime + children.ru_stime
                   - children0.ru_utime - children0.ru_stime)
    got = asyncio.run(_outcome(db.url))
    folded = None
    folder_cpu = None
    if folder is not None:
        folded = asyncio.run(_wait_folded(db.url, tasks))
        folder_cpu = _cpu_s(folder.pid) - folder_cpu0
        folder.terminate()
        folder.wait(timeout=30)
    log.close()
    span = got["last_finished"] - got["first_started"]
    return {"tasks_per_s": tasks / span, "drain_s": span, "folded": folded,
            "workers_cpu_us_per_task": workers_cpu / tasks * 1e6,
            "metrics_cpu_us_per_task": folder_cpu / tasks * 1e6 if folder_cpu else None,
            "exactly_once": got["statuses"].get("succeeded") == tasks}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _submit(url: str, tasks: int) -> None:
    store = open_store(url)
    try:
        for start in range(0, tasks, 1000):
            await queue.submit(store, [TaskIn(agent=AGENT, input={"i": i})
                                       for i in range(start, min(tasks, start + 1000))])
    finally:
        await store.close()


async def _wait_folded(url: str, tasks: int, timeout: float = 120.0) -> float | None:
    """The folded tasks.ended sum once it reaches the tasks of this database, or at the
    timeout."""
    store = open_store(url)
    deadline = time.monotonic() + timeout
    total = None
    try:
        while time.monotonic() < deadline:
            try:
                answer = await query.run(store, query.Query(
                    "tasks.ended", agg="sum", tags={"agent": AGENT}), query.Retention())
                total = answer["groups"][0]["points"][0]["value"] if answer["groups"] else 0
            except Exception:
                total = None
            if total is not None and total >= tasks:
                return float(total)
            await asyncio.sleep(0.5)
    finally:
        await store.close()
    return total


def measure_drains(backend: str, tasks: int, runs: int, workdir: Path,
                   cluster: Any) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    for n in range(runs):
        for variant in (("without", "with") if n % 2 == 0 else ("with", "without")):
            db = fresh_database(backend, f"drain_{variant}_{n}", workdir, cluster)
            rows[variant].append(drain(db, tasks, workdir, variant == "with"))
    base = statistics.median(r["tasks_per_s"] for r in rows["without"])
    withm = statistics.median(r["tasks_per_s"] for r in rows["with"])
    loop_cpu = statistics.median(r["metrics_cpu_us_per_task"] for r in rows["with"])
    worker_cpu = statistics.median(r["workers_cpu_us_per_task"] for r in rows["without"])
    return {"runs": rows, "without_tasks_per_s": base, "with_tasks_per_s": withm,
            "extra_cost_pct": (base / withm - 1) * 100,
            "metrics_cpu_us_per_task": loop_cpu, "workers_cpu_us_per_task": worker_cpu,
            "extra_cpu_pct": loop_cpu / worker_cpu * 100,
            "folded_all": all(r["folded"] is not None and r["folded"] >= tasks
                              for r in rows["with"])}


# ================================================================== running


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from agentos.store import schema

    out: dict[str, Any] = {"load_before": load()}
    cluster = start_postgres(durable=True) if backend == "postgres" else None
    try:
        def url(name: str) -> str:
            if cluster is None:
                return f"sqlite:///{workdir / (name + '.db')}"
            return cluster.create_database(name)

        ingest_url = url("ingest")
        schema.upgrade(ingest_url)
        store = open_store(ingest_url)
        try:
            out["ingest"] = asyncio.run(ingest_ours(store, args.ingest))
        finally:
            asyncio.run(store.close())
        out["ingest_http"] = ingest_http(ingest_url, workdir, args.http_batches)
        query_url = url("queries")
        schema.upgrade(query_url)
        out["queries"] = asyncio.run(measure_queries(query_url, args.samples))
        out["load_after_queries"] = load()
        if args.tasks:
            out["drains"] = measure_drains(backend, args.tasks, args.runs, workdir, cluster)
    finally:
        if cluster is not None:
            cluster.stop()
    out["load_after"] = load()
    return out


def render(data: dict[str, Any]) -> str:
    lines = [f"bench_metrics  {data['code']}  load {data['load_before']} -> "
             f"{data['load_after']}", ""]
    prom = data["prometheus"]
    for backend, r in data["backends"].items():
        ing, http = r["ingest"], r["ingest_http"]
        lines += [f"== {backend}  (load {r['load_before']} -> {r['load_after']})",
                  f"ingestion  ctx.metrics count {ing['count_per_s']:,.0f}/s "
                  f"({ing['count_per_s'] / prom['count_per_s']:.2f}x prometheus-client's "
                  f"{prom['count_per_s']:,.0f}/s), observe {ing['observe_per_s']:,.0f}/s "
                  f"({ing['observe_per_s'] / prom['observe_per_s']:.2f}x "
                  f"{prom['observe_per_s']:,.0f}/s)",
                  f"           with the flush ({ing['flushed_entries']} series x minute "
                  f"entries in {ing['flush_s'] * 1000:.0f} ms): "
                  f"{ing['with_flush_per_s']:,.0f} samples/s; HTTP batches of "
                  f"{HTTP_BATCH}: {http['samples_per_s']:,.0f} samples/s"]
        made = r["queries"]["rollups"]
        lines.append(f"queries    {made['samples']:,} samples made into rollups in "
                     f"{made['seconds']:.1f} s (pool p95 {made['pool_p95']:.1f})")
        for label, q in r["queries"]["queries"].items():
            value = f"{q['value']:.1f}" if isinstance(q["value"], float) else q["value"]
            lines.append(f"           {label:34} {q['ms_median']:7.1f} ms median "
                         f"(max {q['ms_max']:.1f}), {q['points']} points, "
                         f"resolutions {q['resolutions']}, first {value}")
        if "drains" in r:
            d = r["drains"]
            lines.append(f"per task   drain (median of {len(d['runs']['with'])}) "
                         f"{d['without_tasks_per_s']:,.0f} tasks/s without, "
                         f"{d['with_tasks_per_s']:,.0f} with the metrics loop: "
                         f"{d['extra_cost_pct']:+.1f} % time per task; its CPU "
                         f"{d['metrics_cpu_us_per_task']:.0f} us/task beside the workers' "
                         f"{d['workers_cpu_us_per_task']:.0f} us/task "
                         f"({d['extra_cpu_pct']:.1f} %); every task folded: {d['folded_all']}")
            lines.append("           runs (tasks/s): without " + ", ".join(
                f"{x['tasks_per_s']:,.0f}" for x in d["runs"]["without"]) + "; with " + ", ".join(
                f"{x['tasks_per_s']:,.0f}" for x in d["runs"]["with"]))
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--samples", type=int, default=10_000_000,
                        help="histogram samples over 24 h for the query (10,000,000)")
    parser.add_argument("--ingest", type=int, default=200_000,
                        help="samples per kind through ctx.metrics and prometheus-client")
    parser.add_argument("--http-batches", type=int, default=50,
                        help="POST /api/v1/metrics requests of 1,000 samples")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per drain")
    parser.add_argument("--runs", type=int, default=2, help="drains per variant")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data: dict[str, Any] = {"code": code_state(), "machine": machine_info(),
                            "args": vars(args), "load_before": load()}
    data["prometheus"] = ingest_prometheus(args.ingest)
    data["backends"] = {}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        for backend in args.backends:
            data["backends"][backend] = run_backend(backend, args, Path(tmp))
    data["load_after"] = load()
    print(json.dumps(data, indent=2, default=str) if args.json else render(data))


if __name__ == "__main__":
    main()
