"""Benchmark: ``GET /api/v1/agents/{name}`` on SQLite and PostgreSQL, beside ``GET /health``,
with the cache of hot reads and without it.

For each backend: a fresh database is migrated and loaded through the domain
(the three shipped templates plus ``--agents`` generated agents with three
published versions each), a real uvicorn server process serves it, and a load
generator in a separate process (``loadgen.py``) keeps ``--clients`` requests
in flight: first on ``/health`` (the framework alone: the same server, no
database), then on a mix of agent names; then a second server with the cache off
(``AGENTOS_CACHE_ENABLED=false``: every GET reads the database) on the same names.
Each run is a warm-up followed by a measured window of ``--seconds``.

Reported per endpoint: requests/s, p50/p99 latency as the client sees it,
non-200 answers, server CPU per request, CPU use of server, client and the
whole machine during the window, and the server's resident memory.

    .venv/bin/python bench/bench_registry.py                 # table
    .venv/bin/python bench/bench_registry.py --json          # one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import (
    REPO,
    MachineCpu,
    RssSampler,
    Server,
    auth_headers,
    bench_parser,
    calibrate,
    code_state,
    machine_info,
    memory_kb,
    parent_pid,
    process_cpu_s,
    run_bench,
    tree_cpu_s,
)

from agentos import agent_spec, registry, templates
from agentos.documents import Document
from agentos.errors import Conflict
from agentos.store import open_store, schema

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
APP = "agentos.server:from_env"
AGENT_PATH = "/api/v1/agents/{name}"
VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
SEED = 20240601
OTHER_LOAD_WARNING = 0.25  # cores used by unrelated processes that make a run suspect


# ------------------------------------------------------------------ the data


def generated_versions(index: int) -> list[dict[str, Any]]:
    """One generated agent in three versions: definitions shaped like the templates."""
    return [{
        "name": f"bench-agent-{index:03d}",
        "version": version,
        "display_name": f"Bench Agent {index}",
        "description": f"Generated agent {index} for the registry benchmark, revision {rev}",
        "role": f"Watches topic {index % 17} and reacts to its events with a short plan",
        "owner": f"team-{index % 7}",
        "tags": ["bench", f"group-{index % 10}", f"rev-{rev}"],
        "model": {"provider": "openai", "name": "gpt-4o-mini",
                  "params": {"temperature": (rev + 1) / 10}},
        "handler": {"type": "python", "target": f"bench.agents:handle_{index % 5}"},
        "goals": [{"description": f"Keep topic {index % 17} healthy"}],
        "triggers": [{"event": f"bench.topic{index % 17}.*",
                      "filter": {"severity": ["high", "critical"]},
                      "priority": index % 10 + 1}],
        "capabilities": [{"name": f"cap-{index % 13}", "version": 1, "enabled": True}],
        "permissions": {"lock": ["device:*"], "emit": ["bench.*"], "call_sub_agents": False},
        "resources": ["device:{input.device_id}"],
        "limits": {"timeout_s": 300, "max_retries": 3, "concurrency": 2},
        "config": {"threshold": {"type": "float", "value": (index % 9 + 1) / 10}},
    } for rev, version in enumerate(VERSIONS)]


@dataclass(frozen=True)
class Loaded:
    names: list[str]
    versions_stored: int
    already_present: int
    seconds: float


async def load_data(url: str, generated: int) -> Loaded:
    """Publish the shipped templates (``import_yaml``) and the generated agents
    (``agent_spec.validate`` + ``registry.create``: the same validation and writes,
    without the YAML parser, which costs ~10 ms a document)."""
    started = time.monotonic()
    store = open_store(url)
    stored = present = 0
    try:
        for name in templates.names():
            try:
                stored += len(await registry.import_yaml(store, templates.read(name),
                                                         publish=True))
            except Conflict as exc:  # a database given by URL may hold an earlier run's data
                present += _already_there(exc)
        for index in range(generated):
            for definition in generated_versions(index):
                try:
                    await registry.create(store, agent_spec.validate(Document(definition)),
                                          publish=True)
                    stored += 1
                except Conflict as exc:
                    present += _already_there(exc)
    finally:
        await store.close()
    names = templates.names() + [f"bench-agent-{i:03d}" for i in range(generated)]
    return Loaded(names, stored, present, time.monotonic() - started)


def _already_there(exc: Conflict) -> int:
    if exc.code != "version_immutable":
        raise exc
    return 1


def prepare(url: str, generated: int) -> Loaded:
    schema.upgrade(url)
    return asyncio.run(load_data(url, generated))


# --------------------------------------------------------------- databases


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    yield f"sqlite:///{workdir / 'bench.db'}", {"file": "fresh, in a temp dir", "wal": True}


@contextmanager
def postgres_database(given: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """The database at ``given``, or a fresh one in a throwaway cluster (``tests/pg.py``)."""
    if given:
        yield given, {"source": "given URL", **postgres_settings(given)}
        return
    sys.path.insert(0, str(REPO))
    from tests import pg

    cluster = pg.start()
    dbname = f"agentos_bench_{os.getpid()}"
    try:
        cluster.execute(f"CREATE DATABASE {dbname}")
        url = cluster.url(dbname)
        try:
            yield url, {"source": "throwaway cluster from tests/pg.py", **postgres_settings(url)}
        finally:
            cluster.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    finally:
        cluster.stop()


def postgres_settings(url: str) -> dict[str, Any]:
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
    with psycopg.connect(url, autocommit=True) as conn:
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}  # type: ignore[index]


@dataclass(frozen=True)
class PostgresProbe:
    """Reads PostgreSQL's side: connections opened, and the postmaster (for its CPU) if local."""

    url: str
    postmaster: int | None

    @classmethod
    def of(cls, url: str) -> PostgresProbe:
        with psycopg.connect(url, autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        try:
            return cls(url, parent_pid(backend))
        except OSError:  # not on this machine (or not ours to read)
            return cls(url, None)

    def sessions(self) -> int:
        """Connections ever opened to this database (this call's own included)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT sessions FROM pg_stat_database "
                               "WHERE datname = current_database()").fetchone()
        return int(row[0]) if row else 0


# -------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Edge:
    """What the parent reads at an edge of the measured window."""

    at: float
    server_cpu_s: float
    db_cpu_s: float | None
    machine: MachineCpu

    @classmethod
    def read(cls, pid: int, db_pid: int | None) -> Edge:
        db = tree_cpu_s(db_pid) if db_pid else None
        return cls(time.monotonic(), process_cpu_s(pid), db, MachineCpu.read())


def loadgen_command(args: argparse.Namespace, url: str, paths_file: Path) -> list[str]:
    return [sys.executable, str(LOADGEN), "--url", url, "--paths-file", str(paths_file),
            "--clients", str(args.clients), "--warmup", str(args.warmup),
            "--seconds", str(args.seconds), "--client", args.client, "--loop", args.loop]


def run_loadgen(command: list[str], read_edge: Callable[[], Edge], limit_s: float,
                on_start: Callable[[], None]) -> tuple[dict[str, Any], Edge, Edge]:
    """Run the load generator; read the server at the window edges it announces."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(limit_s, process.kill)
    watchdog.start()
    edges: dict[str, Edge] = {}
    result: dict[str, Any] | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("window-"):
                edges[line.strip()] = read_edge()
                if line.startswith("window-start"):
                    on_start()
            elif line.startswith("{"):
                result = json.loads(line)
    finally:
        watchdog.cancel()
        process.wait()
    if result is None or len(edges) != 2:
        raise RuntimeError(f"the load generator failed (exit {process.returncode})")
    return result, edges["window-start"], edges["window-end"]


def measure(server: Server, paths: Sequence[str], args: argparse.Namespace, workdir: Path,
            probe: PostgresProbe | None, profile_to: Path | None) -> dict[str, Any]:
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    command = loadgen_command(args, server.base_url, paths_file)
    db_pid = probe.postmaster if probe else None
    profilers: list[subprocess.Popen[bytes]] = []

    def start_profile() -> None:
        if profile_to is not None:
            profilers.append(py_spy(server.pid, args.seconds, profile_to))

    sessions_before = probe.sessions() if probe else 0
    with RssSampler(server.pid) as rss:
        result, start, end = run_loadgen(command, lambda: Edge.read(server.pid, db_pid),
                                         args.warmup + args.seconds + 30, start_profile)
    for profiler in profilers:
        profiler.wait(timeout=30)
    figures = derive(result, start, end, rss.peak_kb)
    if probe:  # minus the probe's own second connection
        figures["db_connections_opened"] = probe.sessions() - sessions_before - 1
    return figures


def derive(result: dict[str, Any], start: Edge, end: Edge, rss_peak_kb: int) -> dict[str, Any]:
    """Per-request CPU and average CPU use (cores) over the window."""
    window = end.at - start.at
    requests = max(1, result["requests"])
    server_s = end.server_cpu_s - start.server_cpu_s
    db_s = (end.db_cpu_s - start.db_cpu_s
            if end.db_cpu_s is not None and start.db_cpu_s is not None else None)
    client_s = float(result["client_cpu_s"])
    machine_s = end.machine.busy_cores_since(start.machine, window) * window
    other_s = machine_s - server_s - client_s - (db_s or 0.0)
    return {
        **result,
        "server_cpu_us_per_request": server_s / requests * 1e6,
        "db_cpu_us_per_request": None if db_s is None else db_s / requests * 1e6,
        "cpu_cores": {"server": server_s / window,
                      "db": None if db_s is None else db_s / window,
                      "client": client_s / window, "other": other_s / window,
                      "machine": machine_s / window},
        "server_rss_peak_mb": rss_peak_kb / 1024,
    }


def py_spy(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample the server with py-spy for the window (collapsed stacks, for flame graphs).

    Native frames included (libpq, sqlite3, uvloop, the GC): without them the
    time the event loop spends in C is charged to uvicorn's outermost frame.
    Each sample pauses the server, so a profiled run is slower.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
               "--duration", str(max(1, int(seconds))), "--rate", "50", "--native",
               "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------- per backend


def server_env(url: str, cache: bool = True) -> dict[str, str]:
    env = {**os.environ, "AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
           "AGENTOS_CACHE_ENABLED": "true" if cache else "false"}
    env.pop("AGENTOS_AUTO_UPGRADE", None)
    return env


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    database = sqlite_database(workdir) if backend == "sqlite" else postgres_database(
        args.postgres_url)
    with database as (url, db_info):
        loaded = prepare(url, args.agents)
        names = random.Random(SEED).sample(loaded.names, len(loaded.names))
        agent_paths = [AGENT_PATH.format(name=n) for n in names]
        probe = PostgresProbe.of(url) if backend == "postgres" else None
        with Server(APP, server_env(url), workdir) as server:
            check(server.base_url, agent_paths[0])
            idle_kb = memory_kb(server.pid)["VmRSS"]
            pool = httpx.get(server.base_url + "/ready").json().get("pool", {})
            endpoints = {
                endpoint: measure(server, paths, args, workdir, probe,
                                  profile_path(args, backend, endpoint))
                for endpoint, paths in (("health", ["/health"]), ("agent", agent_paths))
            }
            hwm_kb = memory_kb(server.pid)["VmHWM"]
        with Server(APP, server_env(url, cache=False), workdir) as uncached:
            check(uncached.base_url, agent_paths[0])
            endpoints["agent_uncached"] = measure(uncached, agent_paths, args, workdir, probe,
                                                  profile_path(args, backend, "agent_uncached"))
    return {
        "database": db_info,
        "data": {"agents": len(loaded.names), "versions_stored": loaded.versions_stored,
                 "versions_already_present": loaded.already_present,
                 "load_seconds": round(loaded.seconds, 2)},
        "server": {"pool_class": pool.get("class"), "pool_size": pool.get("size"),
                   "rss_idle_mb": idle_kb / 1024, "rss_hwm_mb": hwm_kb / 1024},
        "endpoints": endpoints,
    }


def check(base_url: str, path: str) -> None:
    """One request by hand, so a broken endpoint fails loudly instead of benchmarking 404s."""
    response = httpx.get(base_url + path, headers=auth_headers())
    if response.status_code != 200 or "name" not in response.json():
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:200]}")


def profile_path(args: argparse.Namespace, backend: str, endpoint: str) -> Path | None:
    return args.py_spy / f"{backend}-{endpoint}.txt" if args.py_spy else None


# ------------------------------------------------------------------ output


def report(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    calib_before = calibrate()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentos-bench-") as tmp:
        for backend in args.backends:
            results[backend] = run_backend(backend, args, Path(tmp))
    return {
        "benchmark": "GET /api/v1/agents/{name} (cache on, cache off) vs GET /health, one "
                     "uvicorn process",
        "command": shlex.join(["python", "bench/bench_registry.py", *argv]),
        "code": code_state(),
        "machine": {**machine_info(),
                    "note": "client and server processes share these CPUs"},
        "calibration_iter_per_s": {"before": calib_before, "after": calibrate()},
        "config": {"clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
                   "client": args.client, "loop": args.loop, "generated_agents": args.agents,
                   "profiled_with_py_spy": bool(args.py_spy)},
        "backends": results,
    }


def render(data: dict[str, Any]) -> str:
    cfg, machine, code = data["config"], data["machine"], data["code"]
    calib = data["calibration_iter_per_s"]
    lines = [
        f"AgentOS read benchmark: {cfg['clients']} clients, {cfg['seconds']:g} s measured "
        f"after {cfg['warmup']:g} s warm-up, loopback, one uvicorn process",
        f"machine: {machine['nproc']} CPUs shared by load generator, server and database "
        f"({machine['cpu_model']}), Python {machine['python']}; calib.py "
        f"{_mega(calib['before'])} / {_mega(calib['after'])} M iter/s (before/after)",
        f"load generator: {cfg['client']} HTTP/1.1 keep-alive client on {cfg['loop']}, "
        "one separate process" + ("; PROFILED with py-spy, figures perturbed"
                                  if cfg["profiled_with_py_spy"] else ""),
        f"code: {code['commit']}" + (" + uncommitted changes in src/" if code["dirty"] else ""),
        "",
        f"{'backend':9}{'endpoint':26}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'srv µs/req':>11}{'db µs/req':>10}{'cores: srv':>12}{'db':>5}{'cli':>5}{'other':>6}"
        f"{'all':>5}{'RSS MB':>8}",
    ]
    for backend, res in data["backends"].items():
        for endpoint in ("health", "agent", "agent_uncached"):
            lines.append(_row(backend, endpoint, res["endpoints"][endpoint]))
    lines += ["", *(_backend_note(b, r) for b, r in data["backends"].items()),
              *_interference(data), "",
              "srv/db µs/req = CPU of the server process / PostgreSQL (postmaster and backends) "
              "per request; CPU cores = average busy during the window (other = everything "
              "else on the machine); RSS MB = highest server VmRSS sampled during that run."]
    return "\n".join(lines)


def _row(backend: str, endpoint: str, m: dict[str, Any]) -> str:
    cores, lat = m["cpu_cores"], m["latency_ms"]
    label = {"health": "GET /health", "agent": "GET " + AGENT_PATH,
             "agent_uncached": "  the same, cache off"}[endpoint]
    return (f"{backend:9}{label:26}{m['rps']:7.0f}{lat['p50']:8.2f}{lat['p99']:8.2f}"
            f"{m['errors']:7d}{m['server_cpu_us_per_request']:11.0f}"
            f"{_num(m['db_cpu_us_per_request'], 10, 0)}{cores['server']:12.2f}"
            f"{_num(cores['db'], 5, 2)}{cores['client']:5.2f}{cores['other']:6.2f}"
            f"{cores['machine']:5.2f}{m['server_rss_peak_mb']:8.1f}")


def _interference(data: dict[str, Any]) -> list[str]:
    """A warning when other processes took CPU the benchmark needed."""
    worst = max(m["cpu_cores"]["other"] for res in data["backends"].values()
                for m in res["endpoints"].values())
    if worst < OTHER_LOAD_WARNING:
        return []
    return [f"WARNING: other processes used up to {worst:.2f} cores during a window; "
            "these figures are low. Re-run on a quiet machine."]


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def _backend_note(backend: str, res: dict[str, Any]) -> str:
    health, agent = res["endpoints"]["health"], res["endpoints"]["agent"]
    uncached = res["endpoints"]["agent_uncached"]
    share = health["server_cpu_us_per_request"] / agent["server_cpu_us_per_request"]
    db, server = res["database"], res["server"]
    where = (f"PostgreSQL {db['server_version'].split()[0]} (fsync={db['fsync']}, "
             f"synchronous_commit={db['synchronous_commit']}: durability does not matter for "
             f"reads), {agent.get('db_connections_opened', '?')} connections opened during "
             "the agent run (warm-up included)"
             if backend == "postgres" else "SQLite file in WAL mode, read in-process")
    data = res["data"]
    return (f"{backend}: {where}; {data['agents']} agents, "
            f"{data['versions_stored'] + data['versions_already_present']} versions "
            f"(loaded in {data['load_seconds']:.1f} s); pool {server['pool_class']} "
            f"size {server['pool_size']}; server RSS idle {server['rss_idle_mb']:.0f} MB, "
            f"peak (VmHWM) {server['rss_hwm_mb']:.0f} MB; agent GET = "
            f"{agent['rps'] / health['rps']:.2f}x the /health rate, and /health costs "
            f"{share:.0%} of its server CPU; the cache makes it "
            f"{agent['rps'] / uncached['rps']:.2f}x the rate with the cache off "
            f"({uncached['server_cpu_us_per_request']:.0f} -> "
            f"{agent['server_cpu_us_per_request']:.0f} server µs/req).")


def _mega(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per endpoint")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--agents", type=int, default=200, help="generated agents (3 versions)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator's HTTP client")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="load generator's event loop")
    parser.add_argument("--postgres-url", default=os.environ.get("AGENTOS_BENCH_POSTGRES_URL"),
                        help="use this database (default: $AGENTOS_BENCH_POSTGRES_URL, else a "
                             "throwaway cluster)")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="also record py-spy stacks of the server into DIR (slows it)")
    args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_bench(parse_args, report, render, argv)


if __name__ == "__main__":
    main()
