"""Benchmark: the task queue on SQLite and PostgreSQL, beside Celery 5 + Redis and pgqueuer.

In one run, for each backend (``--backends``), each phase on a fresh database holding one
published agent whose ``python`` handler is a no-op (``noop_handler:noop``, this folder):

1. Submit-only, in-process: ``--n`` (20,000) tasks through ``queue.submit`` in batches of
   1,000; then ``--n-single`` (1,000) tasks one per call.
2. Submit-only over HTTP to a real uvicorn server (``POST /api/v1/tasks/batch``, 1,000 a
   request, one keep-alive connection, one request at a time; then ``--n-single`` single
   ``POST /api/v1/tasks``); then, on the same server, a remote worker's no-op loop over
   the HTTP protocol drains ``--n-single`` of them: claims of 16, each carrying the
   previous claim's completions.
3. End-to-end: ``--n`` tasks pre-submitted in batches, then ``--workers`` (2) real
   ``agentos worker --burst`` processes started; the drain is timed from the first
   attempt's start to the last task's finish (both from the database's clock), and
   again from the moment the workers were spawned. Checked afterwards in the database:
   every task ``succeeded`` with exactly one attempt, and one ``task.succeeded`` event each.

Then the peers, by their own scripts in ``../shared/peers`` (run through
``peer_shim.py`` in ``bench/.peers-venv``, pointed at a Redis and a PostgreSQL this
benchmark starts): Celery 5 + Redis (``bench_celery.py --acks-late``: 2 prefork worker
processes), pgqueuer (``bench_pgqueuer.py``: 2 worker processes, dequeue batch 10, and
100 in the full run) and, in the full run, Procrastinate.

Databases: SQLite files in a temp dir (the store's WAL, synchronous=NORMAL) and databases
in one throwaway PostgreSQL cluster with stock durability (fsync, synchronous_commit on),
like the peers'; the peers' PostgreSQL queues use the same cluster.

    .venv/bin/python bench/bench_tasks.py                  # table (28 min on a loaded machine)
    .venv/bin/python bench/bench_tasks.py --quick          # 4,000 tasks (6 min loaded)
    .venv/bin/python bench/bench_tasks.py --json           # one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import (
    BENCH,
    PEERS,
    PEERS_VENV,
    MachineCpu,
    PostgresCluster,
    RedisServer,
    Server,
    bench_parser,
    calibrate,
    code_state,
    machine_info,
    process_cpu_s,
    run_bench,
    settle,
    start_postgres,
    tree_cpu_s,
    worker_env,
)

from agentos.tasks import DEFAULT_CONCURRENCY

APP = "agentos.server:from_env"
AGENT = "bench-noop"
HANDLER = "noop_handler:noop"  # bench/noop_handler.py, on the workers' PYTHONPATH
BATCH = 1000  # tasks per submit call / request
REMOTE_CLAIM = 16  # tasks per claim of the HTTP worker loop (the worker's default concurrency)
SHIM = BENCH / "peer_shim.py"
CELERY_FACTOR = 2.0  # end-to-end target: at least 2x Celery's (issue 4)
OTHER_LOAD_WARNING = 0.25  # cores used by unrelated processes that make a run suspect


# ================================================================== databases


@dataclass(frozen=True)
class Database:
    backend: str
    url: str
    postmaster: int | None = None  # PostgreSQL: the server whose CPU we read

    def db_cpu_s(self) -> float | None:
        return tree_cpu_s(self.postmaster) if self.postmaster else None


def fresh_database(backend: str, name: str, workdir: Path,
                   cluster: PostgresCluster | None) -> Database:
    """A new, migrated database with the no-op agent published."""
    from agentos.store import schema

    if backend == "sqlite":
        db = Database(backend, f"sqlite:///{workdir / (name + '.db')}")
    else:
        assert cluster is not None
        db = Database(backend, cluster.create_database(name), cluster.postmaster)
    schema.upgrade(db.url)
    asyncio.run(_publish(db.url))
    return db


async def _publish(url: str) -> None:
    from agentos import agent_spec, registry
    from agentos.store import open_store

    store = open_store(url)
    try:
        await registry.create(store, agent_spec.from_object({
            "name": AGENT, "version": "1.0.0", "description": "no-op, for bench_tasks.py",
            "handler": {"type": "python", "target": HANDLER}}), publish=True)
    finally:
        await store.close()


@dataclass(frozen=True)
class Meter:
    """CPU and wall clock at the start of a measured stretch."""

    at: float
    process_s: float
    db_s: float | None
    machine: MachineCpu

    @classmethod
    def start(cls, db: Database) -> Meter:
        return cls(time.perf_counter(), time.process_time(), db.db_cpu_s(), MachineCpu.read())

    def figures(self, db: Database, count: int, extra_s: float = 0.0,
                extra: str = "server", busy_s: float | None = None) -> dict[str, Any]:
        """Rate, CPU per task and cores of this process, an optional other process
        (``extra_s`` CPU seconds) and the database since ``start``. ``busy_s``: the
        seconds the work itself took, when the meter ran on past it (while a server
        finished what the work left it): the rate is over those, the CPU over all."""
        wall = time.perf_counter() - self.at
        own = time.process_time() - self.process_s
        now_db = db.db_cpu_s()
        db_s = None if now_db is None or self.db_s is None else now_db - self.db_s
        machine = MachineCpu.read().busy_cores_since(self.machine, wall)
        out: dict[str, Any] = {
            "tasks": count, "seconds": busy_s or wall, "tasks_per_s": count / (busy_s or wall),
            "client_cpu_us_per_task": own / max(1, count) * 1e6,
            "db_cpu_us_per_task": None if db_s is None else db_s / max(1, count) * 1e6,
            "cpu_cores": {"client": own / wall, "db": None if db_s is None else db_s / wall,
                          "machine": machine,
                          "other": machine - (own + extra_s + (db_s or 0.0)) / wall},
        }
        if extra_s:
            out[f"{extra}_cpu_us_per_task"] = extra_s / max(1, count) * 1e6
            out["cpu_cores"][extra] = extra_s / wall
        return out


# ============================================================= submit-only


def measure_submit(db: Database, n: int, n_single: int) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_submit(db, n, n_single))


async def _submit(db: Database, n: int, n_single: int) -> dict[str, Any]:
    """``queue.submit`` in batches of 1,000, then one task per call, in this process."""
    from agentos import queue
    from agentos.store import open_store
    from agentos.tasks import TaskIn

    store = open_store(db.url)
    try:
        meter = Meter.start(db)
        for start in range(0, n, BATCH):
            await queue.submit(store, [TaskIn(agent=AGENT) for _ in range(min(BATCH, n - start))])
        batched = meter.figures(db, n)
        meter = Meter.start(db)
        for _ in range(n_single):
            await queue.submit(store, [TaskIn(agent=AGENT)])
        single = meter.figures(db, n_single)
    finally:
        await store.close()
    return {"batched": batched, "single": single}


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs prepared bodies, one at a time."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.open()

    def open(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = self.sock.makefile("rb")

    def reopen(self) -> None:
        """A new connection: uvicorn closes one left idle for 5 s (a long settle)."""
        self.close()
        self.open()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        from bench_events import _read_response, request_bytes

        self.sock.sendall(request_bytes(self.host, self.port, path, body))
        return _read_response(self.stream)

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def measure_http(db: Database, workdir: Path, n: int, n_single: int) -> dict[str, Any]:
    """Batches of 1,000 over ``POST /api/v1/tasks/batch``, then single ``POST /api/v1/tasks``,
    from one connection in this process against a uvicorn server process."""
    from bench_events import server_env

    batch = json.dumps({"tasks": [{"agent": AGENT} for _ in range(BATCH)]}).encode()
    one = json.dumps({"agent": AGENT}).encode()
    with Server(APP, server_env(db.url, background=False), workdir) as server:
        conn = Connection(server.base_url)
        try:
            status, body = conn.post("/api/v1/tasks", one)  # warm, and check both shapes
            status2, body2 = conn.post("/api/v1/tasks/batch", batch)
            if status != 201 or status2 != 201 or len(json.loads(body2)["tasks"]) != BATCH:
                raise RuntimeError(f"submit failed: {status} {body[:200]!r} / "
                                   f"{status2} {body2[:200]!r}")
            out: dict[str, Any] = {}
            for key, path, payload, count, per in (
                    ("batched", "/api/v1/tasks/batch", batch, n // BATCH, BATCH),
                    ("single", "/api/v1/tasks", one, n_single, 1)):
                # each phase starts on an idle server and is charged what it leaves:
                # the read models fold every task.created after the request answered
                settle(server.pid)
                conn.reopen()
                server_cpu = process_cpu_s(server.pid)
                meter = Meter.start(db)
                errors = 0
                for _ in range(count):
                    status, _ = conn.post(path, payload)
                    errors += status != 201
                busy = time.perf_counter() - meter.at
                settled = settle(server.pid)
                figures = meter.figures(db, count * per, process_cpu_s(server.pid) - server_cpu,
                                        busy_s=busy)
                out[key] = {**figures, "requests": count, "errors": errors,
                            "settle_s": settled}
            if n_single:
                conn.reopen()
                out["remote"] = _remote_worker(db, server.pid, conn, n_single)
        finally:
            conn.close()
    expected = 1 + BATCH + n // BATCH * BATCH + n_single
    stored = asyncio.run(_statuses(db.url))
    out["tasks_stored"], out["tasks_expected"] = sum(stored.values()), expected
    return out


def _remote_worker(db: Database, server_pid: int, conn: Connection, count: int
                   ) -> dict[str, Any]:
    """A remote worker's no-op loop over the HTTP protocol: claims of ``REMOTE_CLAIM``,
    each carrying the previous claim's completions, until ``count`` tasks are done."""
    server_cpu = process_cpu_s(server_pid)
    meter = Meter.start(db)
    done, errors, requests = 0, 0, 0
    completed: list[dict[str, Any]] = []
    while True:
        limit = min(REMOTE_CLAIM, count - done)
        status, raw = conn.post("/api/v1/tasks/claim", json.dumps({
            "worker_id": "bench-remote", "limit": limit, "completed": completed}).encode())
        requests += 1
        if status != 200:
            errors += 1
            break
        got = json.loads(raw)["tasks"]
        completed = [{"id": t["id"], "attempt": t["attempt"]} for t in got]
        done += len(got)
        if not limit or not got:
            break
    busy = time.perf_counter() - meter.at
    settled = settle(server_pid)
    figures = meter.figures(db, done, process_cpu_s(server_pid) - server_cpu, busy_s=busy)
    return {**figures, "requests": requests, "errors": errors, "settle_s": settled}


# ============================================================== end-to-end


def agentos_command() -> list[str]:
    script = Path(sys.executable).parent / "agentos"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentos.cli.main"]


def measure_drain(db: Database, args: argparse.Namespace, concurrency: int, workdir: Path,
                  profile_to: Path | None) -> dict[str, Any]:
    """Pre-submit ``--n`` tasks, start ``--workers`` burst workers, wait for them to exit."""
    submitted = measure_submit(db, args.n, 0)["batched"]
    env = worker_env(db.url)
    log_path = workdir / f"workers-{db.backend}-{concurrency}.log"
    children0 = _children_cpu_s()
    meter = Meter.start(db)
    spawned = time.time()
    workers: list[subprocess.Popen[bytes]] = []
    profilers: list[subprocess.Popen[bytes]] = []
    timed_out = False
    with log_path.open("ab") as log:
        try:
            for i in range(args.workers):
                workers.append(subprocess.Popen(
                    [*agentos_command(), "worker", "--burst", "--concurrency", str(concurrency),
                     "--id", f"bench-{db.backend}-{i}"],
                    cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT))
            if profile_to is not None:
                profilers = [_py_spy(w.pid, profile_to / f"tasks-{db.backend}-c{concurrency}-"
                                     f"worker{i}.txt") for i, w in enumerate(workers)]
            deadline = time.monotonic() + args.timeout
            for w in workers:
                try:
                    w.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
                    break
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            for p in profilers:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    exited = time.time()
    workers_cpu = _children_cpu_s() - children0
    figures = meter.figures(db, args.n, workers_cpu, extra="workers")
    got = asyncio.run(_outcome(db.url))
    n = args.n
    drain_s = (got["last_finished"] - got["first_started"]) if got["last_finished"] else None
    exactly_once = (got["statuses"] == {"succeeded": n} and got["attempts"] == n
                    and got["attempts_succeeded"] == n and got["tasks_retried"] == 0
                    and got["succeeded_events"] == n)
    del figures["tasks_per_s"], figures["client_cpu_us_per_task"]
    figures["cpu_cores"].pop("client")
    return {
        "tasks": n, "workers": args.workers, "concurrency": concurrency,
        "submit": submitted,
        "drain_s": drain_s,
        "tasks_per_s": n / drain_s if drain_s else 0.0,
        "incl_start_tasks_per_s": n / (got["last_finished"] - spawned)
        if got["last_finished"] else 0.0,
        "until_exit_tasks_per_s": n / (exited - spawned),
        "worker_start_s": got["first_started"] - spawned if got["first_started"] else None,
        "exit_after_last_s": exited - got["last_finished"] if got["last_finished"] else None,
        "exit_codes": [w.returncode for w in workers], "timed_out": timed_out,
        "exactly_once": exactly_once, "check": got, "profiled": profile_to is not None,
        **{k: v for k, v in figures.items() if k not in ("tasks", "seconds")},
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on one worker until it exits (collapsed stacks, native frames, 100 Hz)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                             str(pid), "--rate", "100", "--native", "--format", "raw",
                             "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _statuses(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from agentos.store import open_store
    from agentos.store.tables import tasks

    store = open_store(url)
    try:
        async with store.read() as conn:
            rows = (await conn.execute(select(tasks.c.status, func.count())
                                       .group_by(tasks.c.status))).all()
    finally:
        await store.close()
    return {r[0]: int(r[1]) for r in rows}


async def _outcome(url: str) -> dict[str, Any]:
    """What the database says about a drain."""
    from sqlalchemy import func, select

    from agentos.store import open_store
    from agentos.store.tables import events, task_attempts, tasks

    t, a = tasks.c, task_attempts.c
    store = open_store(url)
    try:
        async with store.read() as conn:
            async def one(stmt: Any) -> Any:
                return (await conn.execute(stmt)).scalar_one()

            first = await one(select(func.min(a.started_at)))
            last = await one(select(func.max(t.finished_at)))
            per_worker = (await conn.execute(select(a.worker_id, func.count())
                                             .group_by(a.worker_id))).all()
            out = {
                "attempts": await one(select(func.count()).select_from(task_attempts)),
                "attempts_succeeded": await one(select(func.count()).select_from(
                    task_attempts).where(a.outcome == "succeeded")),
                "tasks_retried": await one(select(func.count()).select_from(tasks).where(
                    t.attempt != 1)),
                "succeeded_events": await one(select(func.count()).select_from(events).where(
                    events.c.type == "task.succeeded")),
                "per_worker": {r[0]: int(r[1]) for r in per_worker},
                # claiming round trips: a claim stamps its tasks' start with one time
                "claims": await one(select(func.count()).select_from(
                    select(a.worker_id, a.started_at).distinct().subquery())),
                # why any task did not succeed (a few distinct messages)
                "errors": sorted({f"{e.get('type')}: {e.get('message')}" for (e,) in (
                    await conn.execute(select(a.error).where(a.outcome != "succeeded")
                                       .limit(100))).all() if e})[:5],
                "first_started": first.timestamp() if first else None,
                "last_finished": last.timestamp() if last else None,
            }
    finally:
        await store.close()
    return {"statuses": await _statuses(url), **out}


# ================================================================= the peers


def peers_python() -> Path | None:
    python = PEERS_VENV / "bin" / "python"
    return python if python.exists() else None


def run_peer(name: str, script: str, argv: list[str], ports: dict[str, str],
             workdir: Path, timeout: float) -> list[dict[str, Any]]:
    """One of the peers' scripts, through ``peer_shim.py``; its records (raw.jsonl lines)."""
    python = peers_python()
    assert python is not None
    out = workdir / f"peer-{name}"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PEER_OUT": str(out), "PYTHONDONTWRITEBYTECODE": "1", **ports}
    env.pop("PYTHONPATH", None)
    before, started = MachineCpu.read(), time.monotonic()
    done = subprocess.run([str(python), str(SHIM), str(PEERS / script), *argv], env=env,
                          cwd=out, capture_output=True, text=True, timeout=timeout, check=False)
    machine = MachineCpu.read().busy_cores_since(before, time.monotonic() - started)
    raw = out / "raw.jsonl"
    records = [json.loads(line) for line in raw.read_text().splitlines()] if raw.exists() else []
    if done.returncode != 0 or not records:
        raise RuntimeError(f"{script} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    for r in records:
        r["machine_cores_during_script"] = machine
        r["argv"] = [script, *argv]
    return records


def _pick(records: list[dict[str, Any]], what: str, figure: str) -> dict[str, Any] | None:
    return next((r for r in records if what in r["what"] and r["figure"] == figure), None)


def measure_peers(args: argparse.Namespace, cluster: PostgresCluster, workdir: Path
                  ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n, single = str(args.n), str(args.n_single)
    limit = args.timeout + 120
    with RedisServer(workdir / "redis") as redis_server:
        ports = {"PEER_REDIS_PORT": str(redis_server.port), "PEER_PG_PORT": str(cluster.port)}
        records = run_peer("celery", "bench_celery.py",
                           ["--n", n, "--runs", "1", "--enqueue", "loop", "--acks-late",
                            "--timeout", str(args.timeout)], ports, workdir, limit + args.n / 500)
        out["celery"] = _peer_figures(records, "enqueue (loop", "drain")
        out["celery"]["redis"] = redis_server.version()
    cluster.create_database("pgqueuer")
    for i, batch in enumerate(args.pgqueuer_batches):
        records = run_peer(f"pgqueuer-{batch}", "bench_pgqueuer.py",
                           ["--n", n, "--n-single", single if i == 0 else "0", "--runs", "1",
                            "--workers", "2",
                            "--batch-size", str(batch), "--timeout", str(args.timeout)],
                           {**ports, "PEER_PG_DB": "pgqueuer"}, workdir, limit)
        out[f"pgqueuer_b{batch}"] = _peer_figures(records, "one-by-one", "drain",
                                                  batched="enqueue batched")
    if args.procrastinate:
        cluster.create_database("bench")  # the script's admin database
        records = run_peer("procrastinate", "bench_procrastinate.py",
                           ["--n", n, "--n-single", "0", "--runs", "1", "--workers", "2",
                            "--concurrency", "10", "--timeout", str(args.timeout)],
                           ports, workdir, limit + 60)
        out["procrastinate_c10"] = _peer_figures(records, "one-by-one", "drain",
                                                 batched="enqueue batched")
    return out


def _peer_figures(records: list[dict[str, Any]], single: str, drain: str,
                  batched: str | None = None) -> dict[str, Any]:
    e2e = _pick(records, drain, "end-to-end throughput")
    one = _pick(records, single, "enqueue rate")
    many = _pick(records, batched, "enqueue rate") if batched else None
    if e2e is None:
        raise RuntimeError(f"no end-to-end figure in {records}")
    return {
        "label": e2e["what"], "argv": e2e["argv"],
        "tasks_per_s": e2e["value"], "incl_start_tasks_per_s": e2e.get("incl_startup"),
        "executed": e2e.get("executed"),
        "submit_single_per_s": one["value"] if one else None,
        "submit_single_label": one["what"] if one else None,
        "submit_batched_per_s": many["value"] if many else None,
        "machine_cores_during_script": e2e["machine_cores_during_script"],
    }


# ================================================================ the run


def run_backend(backend: str, args: argparse.Namespace, workdir: Path,
                cluster: PostgresCluster | None) -> dict[str, Any]:
    took: dict[str, float] = {}
    lap = time.monotonic()
    out: dict[str, Any] = {}

    def done(phase: str) -> None:
        nonlocal lap
        took[phase] = round(time.monotonic() - lap, 1)
        lap = time.monotonic()

    out["submit"] = measure_submit(fresh_database(backend, f"{backend}_submit", workdir,
                                                  cluster), args.n, args.n_single)
    done("submit")
    out["http"] = measure_http(fresh_database(backend, f"{backend}_http", workdir, cluster),
                               workdir, args.n, args.n_single)
    done("http")
    out["drain"] = []
    for c in args.concurrency:
        for run in range(args.e2e_runs):
            db = fresh_database(backend, f"{backend}_drain_c{c}_{run}", workdir, cluster)
            out["drain"].append(measure_drain(db, args, c, workdir, args.py_spy))
            done(f"drain_c{c}_{run}")
    out["phase_seconds"] = took
    return out


def report(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    started = time.monotonic()
    load_before = os.getloadavg()
    calib_before = calibrate()
    results: dict[str, Any] = {}
    peers: dict[str, Any] = {}
    db_info: dict[str, Any] = {}
    peers_note = None
    with tempfile.TemporaryDirectory(prefix="agentos-bench-tasks-") as tmp:
        workdir = Path(tmp)
        cluster = start_postgres(durable=True)
        try:
            db_info["postgres"] = postgres_info(cluster)
            db_info["sqlite"] = {"dir": str(workdir), "journal_mode": "wal",
                                 "synchronous": "NORMAL (the store's setting)",
                                 "sqlite_version": sqlite3.sqlite_version}
            for backend in args.backends:
                results[backend] = run_backend(backend, args, workdir, cluster)
            peers_started = time.monotonic()
            if args.peers:
                peers_note = peers_missing()
                if peers_note is None:
                    peers = measure_peers(args, cluster, workdir)
            peers_took = round(time.monotonic() - peers_started, 1)
        finally:
            cluster.stop()
    return {
        "benchmark": "task queue: submit-only (in-process, HTTP) and end-to-end drain by 2 "
                     "worker processes; peers: Celery 5 + Redis, pgqueuer, Procrastinate",
        "command": shlex.join(["python", "bench/bench_tasks.py", *argv]),
        "code": code_state(),
        "machine": {**machine_info(), "note": "workers, clients and databases share these CPUs",
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "calibration_iter_per_s": {"before": calib_before, "after": calibrate()},
        "config": {"quick": args.quick, "n": args.n, "n_single": args.n_single,
                   "batch": BATCH, "workers": args.workers, "concurrency": args.concurrency,
                   "e2e_runs": args.e2e_runs, "pgqueuer_batches": args.pgqueuer_batches,
                   "procrastinate": args.procrastinate, "profiled_with_py_spy": bool(args.py_spy)},
        "databases": db_info,
        "backends": results,
        "peers": peers,
        "peers_skipped": peers_note if args.peers else "--no-peers",
        "targets": targets(results, peers),
        "wall_seconds": time.monotonic() - started,
        "peers_seconds": peers_took,
    }


def peers_missing() -> str | None:
    """Why the peers cannot run here, or None."""
    if not (PEERS / "bench_celery.py").exists():
        return f"the peers' scripts are not at {PEERS}"
    if peers_python() is None:
        return (f"no {PEERS_VENV.relative_to(BENCH.parent)}: run "
                "`make bench/.peers-venv/.installed` (see bench/README.md)")
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get update && apt-get install -y redis-server)"
    return None


def postgres_info(cluster: PostgresCluster) -> dict[str, Any]:
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
             "shared_buffers", "max_connections")
    return {"source": "throwaway cluster (bench/common.py start_postgres, durable)",
            **{n: cluster.psql(f"SHOW {n}").strip() for n in names}}


def targets(results: dict[str, Any], peers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend, res in results.items():
        drain = res["drain"][0]
        row: dict[str, Any] = {"tasks_per_s": drain["tasks_per_s"],
                               "concurrency": drain["concurrency"]}
        if "celery" in peers:
            row["vs_celery"] = drain["tasks_per_s"] / peers["celery"]["tasks_per_s"]
            row["celery_target_met"] = row["vs_celery"] >= CELERY_FACTOR
        if "pgqueuer_b10" in peers:
            row["vs_pgqueuer_b10"] = drain["tasks_per_s"] / peers["pgqueuer_b10"]["tasks_per_s"]
            row["pgqueuer_target_met"] = row["vs_pgqueuer_b10"] >= 1.0
        out[backend] = row
    return out


# ================================================================== output


def render(data: dict[str, Any]) -> str:
    cfg, machine, code = data["config"], data["machine"], data["code"]
    calib = data["calibration_iter_per_s"]
    pg = data["databases"]["postgres"]
    load = "/".join(f"{x:.2f}" for x in machine["loadavg_before"])
    lines = [
        f"AgentOS task queue benchmark ({'--quick' if cfg['quick'] else 'full'}; "
        f"{data['wall_seconds']:.0f} s wall): {cfg['n']:,} no-op tasks, {cfg['workers']} "
        "worker processes, loopback",
        f"machine: {machine['nproc']} CPUs shared by workers, clients and databases "
        f"({machine['cpu_model']}), Python {machine['python']}; load average before {load}; "
        f"calib.py {_mega(calib['before'])} / {_mega(calib['after'])} M iter/s (before/after)",
        f"code: {code['commit']}" + (" + uncommitted changes in src/" if code["dirty"] else ""),
        f"PostgreSQL {pg['server_version'].split()[0]}: fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']} (durable, as the peers'); SQLite "
        f"{data['databases']['sqlite']['sqlite_version']}: WAL, synchronous=NORMAL",
    ]
    if cfg["profiled_with_py_spy"]:
        lines.append("PROFILED with py-spy (workers sampled): the end-to-end rates are low")
    lines += ["", *_summary(data), "", *_drain_detail(data), "", *_submit_detail(data)]
    lines += ["", *_targets(data), *_checks(data)]
    if data["peers_skipped"]:
        lines.append(f"peers not run: {data['peers_skipped']}")
    lines += ["", "drain = first attempt's start to the last task's finish (database clock); "
              "incl. start = from spawning the workers; cores = average busy over the drain "
              "(workers = both worker processes, db = PostgreSQL's postmaster and backends, "
              "other = everything else on the machine); a claim = tasks per claiming round "
              "trip (the worker sizes its claims itself)."]
    return "\n".join(lines)


def _summary(data: dict[str, Any]) -> list[str]:
    res, peers = data["backends"], data["peers"]
    backends = list(res)

    def ours(pick: Any) -> list[float | None]:
        return [pick(res[b]) for b in backends]

    rows: list[tuple[str, list[float | None], list[tuple[str, float | None]]]] = []
    drain = ours(lambda r: r["drain"][0]["tasks_per_s"])
    incl = ours(lambda r: r["drain"][0]["incl_start_tasks_per_s"])
    c = data["config"]["concurrency"][0]
    e2e_peers = [(_peer_name(k), p["tasks_per_s"]) for k, p in peers.items()]
    incl_peers = [(_peer_name(k), p["incl_start_tasks_per_s"]) for k, p in peers.items()]
    rows.append((f"end-to-end, drain (worker --concurrency {c})", drain, e2e_peers))
    rows.append(("end-to-end, incl. worker start", incl, incl_peers))
    batched_peers = [(_product(k) + ", enqueue 1,000/call", p["submit_batched_per_s"])
                     for k, p in peers.items() if p.get("submit_batched_per_s")]
    single_peers = [(_product(k) + ", " + _single_kind(k), p["submit_single_per_s"])
                    for k, p in peers.items() if p.get("submit_single_per_s")]
    rows.append(("submit 1,000/call, in-process", ours(lambda r:
                 r["submit"]["batched"]["tasks_per_s"]), batched_peers[:1]))
    rows.append(("submit 1,000/request, HTTP", ours(lambda r:
                 r["http"]["batched"]["tasks_per_s"]), batched_peers[:1]))
    rows.append(("submit 1/call, in-process", ours(lambda r:
                 r["submit"]["single"]["tasks_per_s"]), single_peers))
    rows.append(("submit 1/request, HTTP", ours(lambda r:
                 r["http"]["single"]["tasks_per_s"]), single_peers))
    if all("remote" in res[b]["http"] for b in backends):
        rows.append((f"HTTP worker, {REMOTE_CLAIM}/claim + completions", ours(lambda r:
                     r["http"]["remote"]["tasks_per_s"]), []))
    head = (f"{'tasks/s':40}" + "".join(f"{'AgentOS ' + b:>17}" for b in backends)
            + f"   {'peer, same run':38}{'peer':>9}"
            + "".join(f"{b[:6] + '/peer':>13}" for b in backends))
    lines = ["Throughput (tasks/s) and ratios, ours / peer's:", head]
    for label, values, against in rows:
        first = True
        for name, value in against or [("-", None)]:
            left = (f"{label:40}" + "".join(_num(v, 17, 0) for v in values)) if first \
                else " " * (40 + 17 * len(backends))
            ratios = "".join(_ratio(v, value) for v in values)
            lines.append(f"{left}   {name:38}{_num(value, 9, 0)}{ratios}")
            first = False
    return lines


def _peer_name(key: str) -> str:
    return {"celery": "Celery 5 + Redis, acks_late, -c 2",
            "pgqueuer_b10": "pgqueuer, 2 procs, batch 10",
            "pgqueuer_b100": "pgqueuer, 2 procs, batch 100",
            "procrastinate_c10": "Procrastinate, 2 procs x 10"}.get(key, key)


def _product(key: str) -> str:
    return {"celery": "Celery 5 + Redis"}.get(key, key.split("_")[0].capitalize()
                                              .replace("Pgqueuer", "pgqueuer"))


def _single_kind(key: str) -> str:
    return "apply_async loop" if key == "celery" else "one-by-one"


def _drain_detail(data: dict[str, Any]) -> list[str]:
    lines = [f"End-to-end runs: {data['config']['n']:,} tasks pre-submitted, then "
             f"{data['config']['workers']} `agentos worker --burst` processes",
             f"{'backend':9}{'conc':>5}{'drain s':>8}{'tasks/s':>9}{'incl start':>11}"
             f"{'start s':>8}{'µs/task: workers':>17}{'db':>6}{'cores: workers':>15}{'db':>5}"
             f"{'other':>6}{'a claim':>8}  {'per worker':16}{'once':>6}"]
    for backend, res in data["backends"].items():
        for d in res["drain"]:
            cores = d["cpu_cores"]
            split = "/".join(str(v) for v in d["check"]["per_worker"].values())
            lines.append(
                f"{backend:9}{d['concurrency']:5d}{_num(d['drain_s'], 8, 2)}"
                f"{d['tasks_per_s']:9.0f}{d['incl_start_tasks_per_s']:11.0f}"
                f"{_num(d['worker_start_s'], 8, 2)}{d['workers_cpu_us_per_task']:17.0f}"
                f"{_num(d['db_cpu_us_per_task'], 6, 0)}{cores['workers']:15.2f}"
                f"{_num(cores['db'], 5, 2)}{cores['other']:6.2f}"
                f"{d['tasks'] / max(1, d['check'].get('claims', 0)):8.1f}  {split:16}"
                f"{'yes' if d['exactly_once'] else 'NO':>6}")
    return lines


def _submit_detail(data: dict[str, Any]) -> list[str]:
    lines = ["Submit-only: one client, one call/request at a time",
             f"{'backend':9}{'how':24}{'tasks':>7}{'tasks/s':>9}{'µs/task: client':>16}"
             f"{'server':>7}{'db':>6}{'cores: client':>14}{'server':>7}{'db':>5}{'other':>6}"]
    for backend, res in data["backends"].items():
        for key, how in (("submit", "in-process"), ("http", "HTTP")):
            for kind in ("batched", "single"):
                m = res[key][kind]
                cores = m["cpu_cores"]
                label = f"{how}, {'1,000' if kind == 'batched' else '1'}/call"
                lines.append(
                    f"{backend:9}{label:24}{m['tasks']:7d}{m['tasks_per_s']:9.0f}"
                    f"{m['client_cpu_us_per_task']:16.0f}"
                    f"{_num(m.get('server_cpu_us_per_task'), 7, 0)}"
                    f"{_num(m['db_cpu_us_per_task'], 6, 0)}{cores['client']:14.2f}"
                    f"{_num(cores.get('server'), 7, 2)}{_num(cores['db'], 5, 2)}"
                    f"{cores['other']:6.2f}")
    return lines


def _targets(data: dict[str, Any]) -> list[str]:
    lines = ["Targets (issue 4), end-to-end drain:"]
    for backend, t in data["targets"].items():
        parts = [f"  {backend}: {t['tasks_per_s']:,.0f} tasks/s"]
        if "vs_celery" in t:
            parts.append(f"{t['vs_celery']:.2f}x Celery (target {CELERY_FACTOR:g}x)"
                         + _verdict(t["celery_target_met"]))
        if "vs_pgqueuer_b10" in t:
            parts.append(f"{t['vs_pgqueuer_b10']:.2f}x pgqueuer batch 10 (target 1x)"
                         + _verdict(t["pgqueuer_target_met"]))
        lines.append("; ".join(parts))
    return lines


def _checks(data: dict[str, Any]) -> list[str]:
    out = []
    for backend, res in data["backends"].items():
        for d in res["drain"]:
            if not d["exactly_once"] or d["timed_out"] or any(d["exit_codes"]):
                out.append(f"  {backend} c{d['concurrency']}: NOT exactly once or not clean: "
                           f"{json.dumps(d['check'])}, exit codes {d['exit_codes']}, "
                           f"timed out {d['timed_out']}")
        http = res["http"]
        if http["tasks_stored"] != http["tasks_expected"] or http["batched"]["errors"] \
                or http["single"]["errors"]:
            out.append(f"  {backend} HTTP: {http['tasks_stored']} tasks stored of "
                       f"{http['tasks_expected']}, errors {http['batched']['errors']}"
                       f"/{http['single']['errors']}")
    worst = max((d["cpu_cores"]["other"] for res in data["backends"].values()
                 for d in res["drain"]), default=0.0)
    if worst > OTHER_LOAD_WARNING:
        out.append(f"WARNING: other processes used up to {worst:.2f} cores during a drain; "
                   "those figures are perturbed")
    for key, p in data["peers"].items():
        if p.get("executed") not in (None, data["config"]["n"]):
            out.append(f"  {key}: executed {p['executed']} of {data['config']['n']}")
    return (["Checks:", *out] if out else
            ["Checks: every drained task succeeded exactly once (one attempt, one "
             "task.succeeded event); every HTTP submit stored"])


def _verdict(ok: bool) -> str:
    return " (met)" if ok else " (MISSED)"


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width},.{digits}f}"


def _ratio(ours: float | None, peer: float | None) -> str:
    if not ours or not peer:
        return f"{'-':>13}"
    return f"{ours / peer:12.2f}x"


def _mega(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="4,000 tasks, 300 single submits, pgqueuer batch 10 only, no "
                             "Procrastinate (6 minutes on a loaded machine; its PostgreSQL "
                             "drain is most of it)")
    parser.add_argument("--n", type=int, help="tasks per drain and batched submit "
                                              "(default 20,000)")
    parser.add_argument("--n-single", type=int, help="single submits (default 1,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", default=f"{DEFAULT_CONCURRENCY},4",
                        type=lambda s: [int(c) for c in s.split(",") if c.strip()],
                        help="each worker's --concurrency; a list runs a drain for each (the "
                             f"first is compared with the peers; default {DEFAULT_CONCURRENCY}, "
                             "the worker's own default, then 4)")
    parser.add_argument("--e2e-runs", type=int, default=1, help="drains per concurrency")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds a drain (ours or a peer's) may take")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="skip Celery, pgqueuer and Procrastinate")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="record py-spy stacks of the workers during each drain into DIR "
                             "(slows them)")
    args = parser.parse_args(argv)
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency: one or more positive integers")
    args.n = args.n or (4000 if args.quick else 20_000)
    args.n_single = args.n_single if args.n_single is not None else (
        300 if args.quick else 1000)
    if args.n % BATCH:
        parser.error(f"--n must be a multiple of {BATCH}")
    args.pgqueuer_batches = [10] if args.quick else [10, 100]
    args.procrastinate = not args.quick
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_bench(parse_args, report, render, argv)


if __name__ == "__main__":
    main()
