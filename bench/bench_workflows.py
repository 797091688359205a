"""Workflows beside DBOS Transact and Prefect 3, on SQLite and PostgreSQL, in one run.

    .venv/bin/python bench/bench_workflows.py                 # table (a few minutes)
    .venv/bin/python bench/bench_workflows.py --json
    .venv/bin/python bench/bench_workflows.py --backends sqlite --runs 50

For each backend, on a fresh database: AgentOS with its engine (the ``workflows``
consumer) and a worker (32 slots) in this process, as ``agentos demo`` runs them,
starting runs through ``workflows.runs.start`` (no HTTP); then DBOS Transact on its
own database of the same backend, and Prefect 3 flows against its local server
(SQLite only: its server's default). Every step is a no-op. Figures:

- a bare step: a one-task AgentOS submit until it succeeded (DBOS: a one-step
  workflow; Prefect: a one-task flow), median of ``--sequential``;
- a 10-step linear run, one at a time (median), and the time per step;
- step overhead: time per step of the linear run minus the bare step;
- 10-step linear runs/s with ``--runs`` started at once;
- one fan-out of ``--fan`` children (seconds to the end);
- start-to-first-step p50/p99: from the start call to the first step's handler.

The peers run in their own venv (``bench/.workflow-peers-venv``, ``make bench``
makes it from ``bench/workflow-peers.txt``); they are skipped when it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import workflow_handlers  # noqa: E402

PEERS_PYTHON = common.WORKFLOW_PEERS_PYTHON
PREFECT_RUNS = 20  # linear flows Prefect's rate is measured on (see ``peer``)
LINEAR = "\n".join(
    ["name: linear10", "version: 1.0.0", "steps:"]
    + [f"  - id: s{i}\n    agent: noop\n"
       + ("    input: {mark: \"{{ run.id }}\"}\n" if i == 0 else "")
       + (f"    depends_on: [s{i - 1}]\n" if i else "") for i in range(10)])
FAN = """
name: fan
version: 1.0.0
steps:
  - id: children
    agent: noop
    for_each: "{{ input.items }}"
    input: {i: "{{ item }}"}
"""


# ==================================================================== AgentOS


async def ours(url: str, runs_at_once: int, fan: int, sequential: int) -> dict[str, Any]:
    from sqlalchemy import select

    from agentos import agent_spec, events, queue, registry
    from agentos.store import open_store, schema
    from agentos.store.tables import workflow_runs
    from agentos.tasks import TaskIn
    from agentos.worker.loop import Worker
    from agentos.workflows import definitions, engine, runs

    schema.upgrade(url)
    store = open_store(url, pool_size=20)
    await registry.create(store, agent_spec.from_object({
        "name": "noop", "version": "1.0.0",
        "handler": {"type": "python", "target": "workflow_handlers:noop"}}), publish=True)
    await definitions.import_yaml(store, LINEAR + "\n---\n" + FAN, publish=True)
    stop = asyncio.Event()
    worker = Worker(store, concurrency=32, poll_interval=0.5)
    loops = [asyncio.create_task(engine.run(store, stop)), asyncio.create_task(worker.run())]
    wakeup = store.wakeup(events.CHANNEL)  # every commit here appends an event: wakes us

    async def ended(run_ids: set[str]) -> None:
        """Until every run has ended (one query a look; a commit here wakes us)."""
        runs_c = workflow_runs.c
        left = set(run_ids)
        while left:
            wakeup.clear()
            async with store.read() as conn:
                rows = (await conn.execute(select(runs_c.id, runs_c.status).where(
                    runs_c.id.in_(left), runs_c.status != "running"))).all()
            for run_id, status in rows:
                assert status == "succeeded", (run_id, status)
                left.discard(run_id)
            if left:
                await common_wait(wakeup)

    async def bare() -> float:
        t = time.perf_counter()
        [(task, _)] = await queue.submit(store, [TaskIn(agent="noop")])
        while True:
            wakeup.clear()
            if (await queue.get(store, task.id)).status.final:
                return time.perf_counter() - t
            await common_wait(wakeup)

    async def start(name: str, data: Any = None) -> tuple[str, float]:
        t0 = time.time()
        found, _ = await runs.start(store, runs.StartIn(name, input=data or {}), by="bench",
                                    detail=False)
        return found["id"], t0

    try:
        for _ in range(3):  # warm up
            run_id, _ = await start("linear10")
            await ended({run_id})
            await bare()
        bare_s = [await bare() for _ in range(sequential)]
        lone, first = [], []
        for _ in range(sequential):
            run_id, t0 = await start("linear10")
            await ended({run_id})
            lone.append(time.time() - t0)
            first.append(workflow_handlers.FIRST_STEP[run_id] - t0)
        t = time.perf_counter()
        many = await asyncio.gather(*(start("linear10") for _ in range(runs_at_once)))
        await ended({r for r, _ in many})
        concurrent_s = time.perf_counter() - t
        t = time.perf_counter()
        run_id, _ = await start("fan", {"items": list(range(fan))})
        await ended({run_id})
        fan_s = time.perf_counter() - t
    finally:
        stop.set()
        worker.stop()
        await asyncio.gather(*loops, return_exceptions=True)
        store.forget_wakeup(events.CHANNEL, wakeup)
        await store.close()
    per_step = statistics.median(lone) / 10
    return {
        "bare_step_ms": round(statistics.median(bare_s) * 1000, 3),
        "linear_one_ms": round(statistics.median(lone) * 1000, 2),
        "step_ms": round(per_step * 1000, 3),
        "linear_runs_per_s": round(runs_at_once / concurrent_s, 1),
        "fan_out_s": round(fan_s, 3),
        "start_to_first_step": percentiles(first),
    }


async def common_wait(wakeup: asyncio.Event) -> None:
    from agentos.aio import wait_wakeup

    await wait_wakeup(wakeup, 0.05)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(common.percentile(ordered, 50) * 1000, 2),
            "p99_ms": round(common.percentile(ordered, 99) * 1000, 2)}


# ====================================================================== peers


def peer(name: str, target: str, args: argparse.Namespace, cwd: Path,
         env: dict[str, str] | None = None) -> dict[str, Any] | None:
    # Prefect runs about one flow a second here: a rate from 20 of them, not --runs
    runs = min(args.runs, PREFECT_RUNS) if name == "prefect" else args.runs
    done = subprocess.run([str(PEERS_PYTHON), str(BENCH / "workflow_peers.py"), name, target,
                           str(runs), str(args.fan), str(args.sequential)],
                          cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=1800)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def prefect(args: argparse.Namespace, workdir: Path) -> dict[str, Any] | None:
    """Prefect's local server (SQLite) in a process of its own, and the flows here."""
    port = common.free_port()
    home = workdir / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    server = subprocess.Popen([str(PEERS_PYTHON), "-m", "prefect", "server", "start",
                               "--host", "127.0.0.1", "--port", str(port)], cwd=workdir,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            print("prefect server did not start", file=sys.stderr)
            return None
        return peer("prefect", api, args, workdir, {**env, "PREFECT_API_URL": api})
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ===================================================================== report


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(),
                                           "loadavg_before": os.getloadavg()},
                               "settings": {"runs": args.runs, "fan": args.fan,
                                            "sequential": args.sequential}}
    have_peers = PEERS_PYTHON.exists()
    with tempfile.TemporaryDirectory(prefix="bench-workflows-") as tmp:
        workdir = Path(tmp)
        cluster = common.start_postgres(durable=True) if "postgres" in args.backends else None
        try:
            for backend in args.backends:
                if backend == "sqlite":
                    ours_url = f"sqlite:///{workdir / 'agentos.db'}"
                    dbos_url = f"sqlite:///{workdir / 'dbos.db'}"
                else:
                    assert cluster is not None
                    ours_url = cluster.create_database("agentos")
                    dbos_url = cluster.create_database("dbos")
                row: dict[str, Any] = {"agentos": asyncio.run(ours(
                    ours_url, args.runs, args.fan, args.sequential))}
                if have_peers:
                    row["dbos"] = peer("dbos", dbos_url, args, workdir)
                    if backend == "sqlite":
                        row["prefect"] = prefect(args, workdir)
                results[backend] = row
        finally:
            if cluster is not None:
                cluster.stop()
    results["machine"]["loadavg_after"] = os.getloadavg()
    return results


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"bench_workflows: {data['settings']}; {m['cpus']} CPUs, load "
             f"{'/'.join(f'{x:.2f}' for x in m['loadavg_before'])} before, "
             f"{'/'.join(f'{x:.2f}' for x in m['loadavg_after'])} after", ""]
    head = (f"{'backend':<9} {'system':<8} {'bare ms':>8} {'step ms':>8} {'overhd ms':>9} "
            f"{'1 run ms':>9} {'runs/s':>7} {'fan-out s':>9} {'first p50':>9} {'p99 ms':>7}")
    lines.append(head)
    for backend in ("sqlite", "postgres"):
        for system, f in (data.get(backend) or {}).items():
            if not f:
                lines.append(f"{backend:<9} {system:<8} (failed)")
                continue
            first = f["start_to_first_step"]
            lines.append(
                f"{backend:<9} {system:<8} {f['bare_step_ms']:>8.2f} {f['step_ms']:>8.2f} "
                f"{f['step_ms'] - f['bare_step_ms']:>9.2f} {f['linear_one_ms']:>9.1f} "
                f"{f['linear_runs_per_s']:>7.1f} {f['fan_out_s']:>9.2f} "
                f"{first['p50_ms']:>9.1f} {first['p99_ms']:>7.1f}")
    lines.append("")
    for backend in ("sqlite", "postgres"):
        row = data.get(backend) or {}
        ours_ = row.get("agentos")
        for peer_name in ("dbos", "prefect"):
            theirs = row.get(peer_name)
            if ours_ and theirs:
                lines.append(
                    f"{backend}: ours/{peer_name} runs/s "
                    f"{ours_['linear_runs_per_s'] / theirs['linear_runs_per_s']:.2f}x, "
                    f"one run {theirs['linear_one_ms'] / ours_['linear_one_ms']:.2f}x as fast, "
                    f"fan-out {theirs['fan_out_s'] / ours_['fan_out_s']:.2f}x as fast")
    sqlite_ours = (data.get("sqlite") or {}).get("agentos")
    if sqlite_ours:
        overhead = sqlite_ours["step_ms"] - sqlite_ours["bare_step_ms"]
        lines.append(f"target: step overhead on SQLite {overhead:.2f} ms (< 5 ms: "
                     f"{'met' if overhead < 5 else 'NOT met'})")
    for backend in ("sqlite", "postgres"):
        row = data.get(backend) or {}
        if row.get("agentos") and row.get("dbos"):
            ok = row["agentos"]["linear_runs_per_s"] >= row["dbos"]["linear_runs_per_s"]
            lines.append(f"target: 10-step runs/s on {backend} >= DBOS: "
                         f"{'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="linear runs started at once")
    parser.add_argument("--fan", type=int, default=1000, help="children of the fan-out")
    parser.add_argument("--sequential", type=int, default=30,
                        help="runs one at a time (latencies)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    data = run(args)
    print(json.dumps(data, indent=2) if args.json else render(data))


if __name__ == "__main__":
    main()
