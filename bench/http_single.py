"""Single writes over HTTP: the server's CPU per request, one request at a time.

For each backend (``--backends``) a fresh database (as ``bench_tasks``: SQLite in a temp
dir, PostgreSQL in a throwaway durable cluster, the no-op agent published) and a uvicorn
server as ``bench_tasks`` starts it (router and scheduler off). One keep-alive
connection then sends, one at a time and checking every answer:

- ``submit``: ``--n`` single ``POST /api/v1/tasks``;
- ``append``: ``--n`` single ``POST /api/v1/events``;
- ``complete``: ``--n`` tasks claimed beforehand (claims of 16, not measured), then one
  ``POST /api/v1/tasks/{id}/complete`` each;
- ``replay``: ``--n`` single ``POST /api/v1/tasks`` with the same idempotency key (a
  producer retrying: the first makes the task, each other answers it and writes its
  audit row). Not in the default phases.
- ``worker``: a remote worker's no-op loop over ``--n`` tasks submitted beforehand (not
  measured): ``POST /api/v1/tasks/claim`` for ``--claim`` (16) at a time, each claim carrying the
  previous one's completions, as ``bench_tasks``' "HTTP worker" row. Its figures are
  per task, not per request. Not in the default phases.

For each: requests/s and the server process's CPU per request (``/proc``), and the
database's CPU per request on PostgreSQL. ``--py-spy DIR`` records the server while each
phase runs (collapsed stacks, ``pyspy_summary.py`` sums them; the rates are then low),
with ``--gil``: a sample only while a thread holds the GIL, so CPU, not waits (uvloop's
waits otherwise count as busy). The server's background loops (the projections, the
workflow engine's follower, the reaper) run as in any server: their cost per request
falls as the rate rises, so compare runs at similar rates.

    .venv/bin/python bench/http_single.py --n 1000
    .venv/bin/python bench/http_single.py --backends postgres --n 800 --py-spy /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_events import EVENTS_PATH, event_body, server_env
from bench_tasks import APP, Connection, Database, fresh_database
from common import Server, bench_parser, machine_info, process_cpu_s, run_bench, start_postgres

PHASES = ("submit", "append", "complete")  # the default; also "replay"
CLAIM = 16


def measure(db: Database, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Server(APP, server_env(db.url, background=False), workdir) as server:
        conn = Connection(server.base_url)
        try:
            for phase in args.phases:
                if phase == "worker":
                    _submit(conn, args.claim * 5)
                    _work(conn, args.claim * 5, args.claim)  # warm the route
                    _submit(conn, args.n)
                else:
                    requests = _requests(conn, phase, args.n)
                    for _ in range(min(20, args.n)):  # warm the route
                        _check(conn.post(*next(requests)), phase)
                    requests = _requests(conn, phase, args.n)
                spy = _py_spy(server.pid, args.py_spy / f"{db.backend}-{phase}.txt") \
                    if args.py_spy else None
                cpu0, db0, t0 = process_cpu_s(server.pid), db.db_cpu_s(), time.perf_counter()
                count = (_work(conn, args.n, args.claim) if phase == "worker"
                         else _send(conn, requests, phase))
                wall = time.perf_counter() - t0
                cpu, db1 = process_cpu_s(server.pid) - cpu0, db.db_cpu_s()
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                    spy.wait(60)
                out[phase] = {
                    "requests": count, "per_s": count / wall,
                    "server_cpu_us": cpu / count * 1e6,
                    "db_cpu_us": None if db0 is None or db1 is None
                    else (db1 - db0) / count * 1e6}
        finally:
            conn.close()
    return out


def _requests(conn: Connection, phase: str, n: int) -> Any:
    if phase == "submit":
        body = json.dumps({"agent": "bench-noop"}).encode()
        return iter([("/api/v1/tasks", body)] * n)
    if phase == "append":
        return iter([(EVENTS_PATH, json.dumps(event_body(i)).encode()) for i in range(n)])
    if phase == "replay":
        body = json.dumps({"agent": "bench-noop", "idempotency_key": "bench-replay"}).encode()
        return iter([("/api/v1/tasks", body)] * n)
    # complete: submit and claim n tasks first (not measured)
    _submit(conn, n)
    claimed: list[dict[str, Any]] = []
    while len(claimed) < n:
        status, raw = conn.post("/api/v1/tasks/claim", json.dumps(
            {"worker_id": "bench-single", "limit": min(CLAIM, n - len(claimed)),
             "lease_s": 600}).encode())
        got = json.loads(raw)["tasks"] if status == 200 else []
        if not got:
            raise RuntimeError(f"claim: {status} {raw[:200]!r}")
        claimed += got
    return iter([(f"/api/v1/tasks/{t['id']}/complete",
                  json.dumps({"attempt": t["attempt"], "output": {}}).encode())
                 for t in claimed])


def _send(conn: Connection, requests: Any, phase: str) -> int:
    """Send each (path, body) of ``requests``, one at a time; returns how many."""
    count = 0
    for path, body in requests:
        _check(conn.post(path, body), phase)
        count += 1
    return count


def _submit(conn: Connection, n: int) -> None:
    submitted = 0
    while submitted < n:
        size = min(1000, n - submitted)
        status, raw = conn.post("/api/v1/tasks/batch", json.dumps(
            {"tasks": [{"agent": "bench-noop"} for _ in range(size)]}).encode())
        _check((status, raw), "submit batch")
        submitted += size


def _work(conn: Connection, n: int, claim: int) -> int:
    """A remote worker's no-op loop until ``n`` tasks are done: claims of ``claim``,
    each carrying the previous claim's completions. Returns the tasks done."""
    done, completed = 0, []
    while True:
        limit = min(claim, n - done)
        status, raw = conn.post("/api/v1/tasks/claim", json.dumps({
            "worker_id": "bench-remote", "limit": limit, "completed": completed}).encode())
        _check((status, raw), "worker")
        answer = json.loads(raw)
        if answer.get("stale"):
            raise RuntimeError(f"worker: stale completions {answer['stale'][:3]}")
        got = answer["tasks"]
        completed = [{"id": t["id"], "attempt": t["attempt"]} for t in got]
        done += len(got)
        if not limit or not got:
            return done


def _check(answer: tuple[int, bytes], phase: str) -> None:
    status, raw = answer
    if status not in (200, 201):
        raise RuntimeError(f"{phase}: {status} {raw[:300]!r}")


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                             str(pid), "--rate", "200", "--gil", "--format", "raw", "--output",
                             str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the first request


def report(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentos-bench-http1-") as tmp:
        workdir = Path(tmp)
        cluster = start_postgres(durable=True) if "postgres" in args.backends else None
        try:
            for backend in args.backends:
                db = fresh_database(backend, f"{backend}_single", workdir, cluster)
                results[backend] = measure(db, workdir, args)
        finally:
            if cluster is not None:
                cluster.stop()
    return {"argv": list(argv), "machine": machine_info(), "results": results}


def render(data: dict[str, Any]) -> str:
    lines = ["backend   request     requests/s  server CPU us/request  db CPU us/request"]
    for backend, phases in data["results"].items():
        for phase, m in phases.items():
            db = "-" if m["db_cpu_us"] is None else f"{m['db_cpu_us']:.0f}"
            lines.append(f"{backend:<9} {phase:<10} {m['per_s']:>11.0f} "
                         f"{m['server_cpu_us']:>22.0f} {db:>18}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--n", type=int, default=1000, help="requests per phase")
    parser.add_argument("--phases", default=",".join(PHASES),
                        type=lambda s: [p for p in s.split(",") if p],
                        help="submit, append, complete, replay, worker (default: the first "
                        "three)")
    parser.add_argument("--claim", type=int, default=CLAIM,
                        help=f"tasks a claim of the worker phase asks for (default {CLAIM})")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="record the server with py-spy during each phase into DIR")
    args = parser.parse_args(argv)
    if unknown := set(args.phases) - {*PHASES, "replay", "worker"}:
        parser.error(f"--phases: unknown {sorted(unknown)}")
    if not 1 <= args.claim <= 1000:
        parser.error("--claim: between 1 and 1000")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    run_bench(parse_args, report, render, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
