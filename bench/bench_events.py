"""Benchmark: the event log on SQLite and PostgreSQL, beside Redis and PostgreSQL pub/sub.

In one run, for each backend (``--backends``):

1. Appends over HTTP to a real uvicorn server process (``POST /api/v1/events``),
   from a load client in a separate process (raw HTTP/1.1 keep-alive, closed loop):
   one event per request with ``--clients`` (8) connections, and 1,000 events per
   request with ``--batch-clients`` (4). First with the router and scheduler off
   (append alone), then on a second server with the defaults of ``agentos serve``
   (router and scheduler on: routing costs writes). No published trigger names the
   appended events' type, so none is queued for routing; then, on that server, an
   agent listening to their type (with a filter none passes) is published and the
   batches appended again: each is queued, and routed to nobody by its filter
   (``on+l``); then one event of each request passes the filter and makes a task
   (``on+t``).
2. The same batches appended in-process, ``events.append(store, [1000 EventIn])`` in
   a loop without HTTP, plus what request parsing/validation and response building
   cost per event, so the report can tell HTTP/JSON from storage.
3. Emit -> SSE latency: one subscriber process on ``GET /api/v1/events/stream``,
   one producer process posting one event per request at a steady ``--rate``
   (open loop, a few keep-alive connections); the payload carries
   ``time.monotonic_ns()`` at send (CLOCK_MONOTONIC is system-wide), the
   subscriber takes its clock when the bytes arrive. ``--sse-n`` (10,000) events on
   the router-off server, ``--sse-n-routed`` (1,000) on the router-on one. The rate
   is 100/s by default, not 500-1,000/s: a paced one-event POST costs the server
   3-6 ms of CPU on this machine, so 200/s already saturates it on PostgreSQL and
   the figure would be queueing. That makes the full run ~8-9 minutes (each 10,000
   event run takes 100 s, for us on two backends and for two peers).

Then the peers, at the same rate and count: Redis PUBLISH -> SUBSCRIBE and
PostgreSQL NOTIFY -> LISTEN, measured by the peers' own ``bench_pubsub.one_run``
(``../shared/peers``) pointed at our Redis and our cluster.

Databases: a fresh SQLite file per phase in a temp dir (the store's WAL,
synchronous=NORMAL), and a fresh database per phase in a throwaway PostgreSQL
cluster with stock durability (fsync and synchronous_commit on), like the peers'.

    .venv/bin/python bench/bench_events.py                 # table, about 8-9 minutes
    .venv/bin/python bench/bench_events.py --quick         # about 90 s
    .venv/bin/python bench/bench_events.py --json          # one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import queue
import shlex
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import (
    PEERS,
    PostgresCluster,
    RedisServer,
    RssSampler,
    Server,
    auth_headers,
    bench_parser,
    calibrate,
    code_state,
    machine_info,
    percentile,
    run_bench,
    start_postgres,
    tree_cpu_s,
)

HERE = Path(__file__).resolve()
APP = "agentos.server:from_env"
EVENTS_PATH = "/api/v1/events"
BATCH = 1000  # events per batched request
PAD = "p" * 80  # payload padding: ~100-byte payloads, like the peers' messages
APPEND_TYPE = "bench.append"
SSE_TYPE = "bench.sse.tick"
BATCH_TARGET = 50_000  # events/s, batched append on SQLite (issue 3)
SSE_P99_TARGET_MS = 20.0  # emit -> SSE p99 on one node (issue 3)
OTHER_LOAD_WARNING = 0.25  # cores used by unrelated processes that make a run suspect


# =================================================================== child processes
# ``bench_events.py post-load|sse-subscribe|sse-produce ...``: run by the parent as
# separate processes. They import only the standard library, loadgen and common.


def event_body(i: int, event_type: str = APPEND_TYPE, **extra: Any) -> dict[str, Any]:
    return {"type": event_type, "source": "bench", "payload": {"i": i, **extra, "pad": PAD}}


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{_auth_lines()}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def _auth_lines() -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in auth_headers().items())


class RawPoster:
    """One keep-alive connection that POSTs the same prepared body (loadgen's raw client,
    for POST)."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, _path: str) -> int:
        from loadgen import _parse_head

        try:
            if self._reader is None or self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._writer.write(self.request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status, length, keep_alive = _parse_head(head)
            await self._reader.readexactly(length)
            if not keep_alive:
                self.close()
            return status
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _post_load(args: argparse.Namespace) -> dict[str, Any]:
    from loadgen import Tally, Window, mark_window, worker

    parts = urlsplit(args.url)
    assert parts.hostname and parts.port
    if args.per_request == 1:
        body = json.dumps(event_body(0)).encode()
    else:
        body = json.dumps({"events": [event_body(n) for n in range(args.per_request)]}).encode()
    request = request_bytes(parts.hostname, parts.port, EVENTS_PATH, body)
    posters = [RawPoster(parts.hostname, parts.port, request) for _ in range(args.clients)]
    start = time.monotonic() + args.warmup
    window = Window(start, start + args.seconds, args.max_requests)
    tally, cpu = Tally(), dict[str, float]()
    try:
        async with asyncio.timeout(args.warmup + args.seconds + args.timeout + 5):
            await asyncio.gather(mark_window(window, cpu),
                                 *(worker(p.post, [EVENTS_PATH], 0, window, tally, args.timeout)
                                   for p in posters))
    finally:
        for p in posters:
            p.close()
    latencies = sorted(tally.latencies)
    ok = tally.outcomes.get("201", 0)
    return {
        "clients": args.clients, "events_per_request": args.per_request,
        "request_bytes": len(body), "seconds": args.seconds,
        "requests": len(latencies), "ok": ok, "errors": len(latencies) - ok,
        "outcomes": dict(tally.outcomes),
        "rps": len(latencies) / args.seconds,
        "events_per_s": ok * args.per_request / args.seconds,
        "latency_ms": {"p50": percentile(latencies, 50) * 1000,
                       "p99": percentile(latencies, 99) * 1000,
                       "max": (latencies[-1] if latencies else float("nan")) * 1000},
        "client_cpu_s": cpu.get("end", time.process_time()) - cpu.get("start", 0.0),
    }


def post_load(argv: Sequence[str]) -> None:
    """Closed-loop POST load; prints window-start/window-end, then one JSON line
    (loadgen.py's protocol, so bench_registry.run_loadgen drives it)."""
    parser = argparse.ArgumentParser(prog="bench_events.py post-load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-request", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--max-requests", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    import uvloop

    print(json.dumps(uvloop.run(_post_load(args))), flush=True)


def _read_response(stream: Any) -> tuple[int, bytes]:
    from loadgen import _parse_head

    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        head += line
    status, length, _ = _parse_head(head)
    return status, stream.read(length)


def sse_produce(argv: Sequence[str]) -> None:
    """Emit ``--n`` events, one per request, at ``--rate`` per second (open loop: the
    main thread paces with time.sleep, like the peers' publisher, and hands each
    event to a free one of ``--connections`` sender threads). Each payload carries
    ``sent_ns`` (monotonic) taken just before the request is written. Prints one
    JSON line: per event, send time, response time, status, and how late the sender
    was against the schedule."""
    parser = argparse.ArgumentParser(prog="bench_events.py sse-produce")
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
    sent = [0] * args.n
    acked = [0] * args.n
    status = [0] * args.n
    late = [0.0] * args.n

    def sender() -> None:
        with socket.create_connection((host, port), timeout=args.timeout) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = conn.makefile("rb")
            while (job := jobs.get()) is not None:
                i, due = job
                t = time.monotonic_ns()
                late[i] = t / 1e9 - due
                body = json.dumps(event_body(i, SSE_TYPE, sent_ns=t)).encode()
                conn.sendall(request_bytes(host, port, EVENTS_PATH, body))
                status[i], _ = _read_response(stream)
                sent[i], acked[i] = t, time.monotonic_ns()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(args.connections)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    for i in range(args.n):
        due = t0 + i / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        jobs.put((i, due))
    for _ in threads:
        jobs.put(None)
    deadline = time.monotonic() + args.timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    print(json.dumps({"sent_ns": sent, "acked_ns": acked, "status": status, "late_s": late,
                      "wall_s": time.monotonic() - t0, "cpu_s": time.process_time()}),
          flush=True)


def sse_subscribe(argv: Sequence[str]) -> None:
    """One SSE subscriber on a raw socket: parses the chunked stream, takes
    ``time.monotonic_ns()`` when each read returns, and for every event computes
    ``now - payload.sent_ns``. Prints ``ready`` once the stream is open, then one
    JSON line after ``--n`` events or ``--timeout`` seconds."""
    parser = argparse.ArgumentParser(prog="bench_events.py sse-subscribe")
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--type", default=SSE_TYPE)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conn = socket.create_connection((host, port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(f"GET /api/v1/events/stream?type={args.type} HTTP/1.1\r\nHost: {host}:{port}"
                 f"\r\n{_auth_lines()}Accept: text/event-stream\r\n\r\n".encode())
    raw = bytearray()
    while b"\r\n\r\n" not in raw:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the stream")
        raw += chunk
    head, _, rest = bytes(raw).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
        raise RuntimeError(f"unexpected stream head: {head[:200]!r}")
    raw = bytearray(rest)
    text = bytearray()
    lat: list[int] = []
    index: list[int] = []
    seqs: list[int] = []
    ready = False
    conn.settimeout(1.0)
    deadline = time.monotonic() + args.timeout
    now = time.monotonic_ns()
    while len(lat) < args.n and time.monotonic() < deadline:
        while True:  # de-chunk what has arrived
            eol = raw.find(b"\r\n")
            if eol < 0:
                break
            size = int(raw[:eol], 16)
            if len(raw) < eol + 2 + size + 2:
                break
            text += raw[eol + 2:eol + 2 + size]
            del raw[:eol + 2 + size + 2]
        while (end := text.find(b"\n\n")) >= 0:
            block = bytes(text[:end])
            del text[:end + 2]
            seq = data = None
            for line in block.split(b"\n"):
                if line.startswith(b"id: "):
                    seq = int(line[4:])
                elif line.startswith(b"data: "):
                    data = json.loads(line[6:])
                elif line.startswith(b": connected") and not ready:
                    ready = True
                    print("ready", flush=True)
            if data is not None and seq is not None:
                payload = data["payload"]
                lat.append(now - payload["sent_ns"])
                index.append(payload["i"])
                seqs.append(seq)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        now = time.monotonic_ns()
        if not chunk:
            break
        raw += chunk
    conn.close()
    print(json.dumps({"lat_ns": lat, "i": index, "seq": seqs, "cpu_s": time.process_time()}),
          flush=True)


# ============================================================================ parent


@dataclass
class Database:
    backend: str
    url: str
    path: Path | None = None  # SQLite file
    postmaster: int | None = None

    def counts(self) -> tuple[int, int]:
        """(last appended seq, events waiting in the router's queue)."""
        # the last number handed out: SQLite's head row, PostgreSQL's sequence
        head = ("(SELECT last_seq FROM event_log_head WHERE id = 1)" if self.path is not None
                else "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq)")
        sql = f"SELECT {head}, (SELECT count(*) FROM route_queue)"
        if self.path is not None:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute(sql).fetchone()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def fresh_database(backend: str, name: str, workdir: Path,
                   cluster: PostgresCluster | None) -> Database:
    """A new, migrated database holding the three shipped templates (published: the
    router has agents to match against; no bench event matches their triggers)."""
    from bench_registry import prepare

    if backend == "sqlite":
        path = workdir / f"{name}.db"
        db = Database(backend, f"sqlite:///{path}", path=path)
    else:
        assert cluster is not None
        db = Database(backend, cluster.create_database(name), postmaster=cluster.postmaster)
    prepare(db.url, 0)
    return db


# the listener's filters. None passes FILTER_NONE, which PostgreSQL's take checks in
# the database: it reads none of the events back. One event of each request passes
# FILTER_ONE (its "i" is its place in the request): a task each. FILTER_READ, a number
# past 2**53, is left to the router, which reads every event back (none passes)
FILTER_NONE: dict[str, Any] = {"never": True}
FILTER_ONE: dict[str, Any] = {"i": 0}
FILTER_READ: dict[str, Any] = {"i": 2**60}


async def publish_listener(url: str, event_type: str = APPEND_TYPE,
                           conditions: dict[str, Any] | None = None,
                           version: str = "1.0.0") -> None:
    """Publish (a version of) an agent whose trigger names ``event_type`` with a filter
    no bench event passes: from then on each event of that type is queued for routing,
    and routed to nobody (an event no trigger names is never queued)."""
    from agentos import agent_spec, registry
    from agentos.store import open_store

    store = open_store(url)
    try:
        await registry.create(store, agent_spec.from_object({
            "name": "bench-listener", "version": version,
            "handler": {"type": "python", "target": "bench:never"},
            "triggers": [{"event": event_type, "filter": conditions or FILTER_NONE}]}),
            publish=True)
    finally:
        await store.close()


def server_env(url: str, background: bool) -> dict[str, str]:
    from bench_registry import server_env as registry_env

    flag = "true" if background else "false"
    return {**registry_env(url), "AGENTOS_RUN_ROUTER": flag, "AGENTOS_RUN_SCHEDULER": flag}


def check_emit(base_url: str) -> None:
    """One event and one batch of two by hand: a broken endpoint fails loudly."""
    import httpx

    one = httpx.post(base_url + EVENTS_PATH, json=event_body(0), headers=auth_headers())
    two = httpx.post(base_url + EVENTS_PATH, json={"events": [event_body(1), event_body(2)]},
                     headers=auth_headers())
    if (one.status_code != 201 or "seq" not in one.json() or two.status_code != 201
            or len(two.json()["events"]) != 2):
        raise RuntimeError(f"POST {EVENTS_PATH}: {one.status_code} {one.text[:200]} / "
                           f"{two.status_code} {two.text[:200]}")


def measure_append(server: Server, db: Database, args: argparse.Namespace, per_request: int,
                   clients: int, profile_to: Path | None) -> dict[str, Any]:
    from bench_registry import Edge, derive, py_spy, run_loadgen

    command = [sys.executable, str(HERE), "post-load", "--url", server.base_url,
               "--clients", str(clients), "--per-request", str(per_request),
               "--warmup", str(args.warmup), "--seconds", str(args.seconds)]
    counts: dict[str, tuple[int, int]] = {}
    profilers: list[subprocess.Popen[bytes]] = []

    def read_edge() -> Edge:
        edge = Edge.read(server.pid, db.postmaster)
        counts["end" if "start" in counts else "start"] = db.counts()
        return edge

    def start_profile() -> None:
        if profile_to is not None:
            profilers.append(py_spy(server.pid, args.seconds, profile_to))

    with RssSampler(server.pid) as rss:
        result, start, end = run_loadgen(command, read_edge, args.warmup + args.seconds + 60,
                                         start_profile)
    for profiler in profilers:
        profiler.wait(timeout=60)
    figures = derive(result, start, end, rss.peak_kb)
    window = end.at - start.at
    (seq0, queued0), (seq1, queued1) = counts["start"], counts["end"]
    appended = seq1 - seq0
    events = max(1, appended)
    cpu = figures["cpu_cores"]
    figures.update({
        # the log's own count: events committed between the two window edges. The
        # client's count misses requests that straddle an edge (with 1,000 events a
        # request, a large share of a short window)
        "events_per_s": appended / window,
        "events_per_s_client": result["events_per_s"],
        "server_cpu_us_per_event": cpu["server"] * window / events * 1e6,
        "db_cpu_us_per_event": None if cpu["db"] is None else cpu["db"] * window / events * 1e6,
        "routed_per_s": (appended - (queued1 - queued0)) / window,
        "route_backlog_at_end": queued1,
    })
    return figures


# ------------------------------------------------------------------ emit -> SSE


def measure_sse(server: Server, db: Database, args: argparse.Namespace, n: int
                ) -> dict[str, Any]:
    from bench_registry import Edge

    limit = n / args.rate + 60
    sub = subprocess.Popen([sys.executable, str(HERE), "sse-subscribe", "--url", server.base_url,
                            "--n", str(n), "--timeout", str(limit)],
                           stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(limit + 30, sub.kill)
    watchdog.start()
    try:
        assert sub.stdout is not None
        if sub.stdout.readline().strip() != "ready":
            raise RuntimeError("the SSE subscriber did not connect")
        time.sleep(0.2)  # as the peers' script does, before publishing
        start = Edge.read(server.pid, db.postmaster)
        with RssSampler(server.pid) as rss:
            produced = subprocess.run(
                [sys.executable, str(HERE), "sse-produce", "--url", server.base_url,
                 "--n", str(n), "--rate", str(args.rate),
                 "--connections", str(args.sse_connections), "--timeout", str(limit)],
                capture_output=True, text=True, timeout=limit + 30, check=True)
            end = Edge.read(server.pid, db.postmaster)
        received = json.loads(sub.stdout.read().strip().splitlines()[-1])
        sub.wait(30)
    finally:
        watchdog.cancel()
        if sub.poll() is None:
            sub.kill()
    sent = json.loads(produced.stdout.strip().splitlines()[-1])
    return sse_figures(received, sent, args, n, start, end, rss.peak_kb)


def sse_figures(received: dict[str, Any], sent: dict[str, Any], args: argparse.Namespace,
                n: int, start: Any, end: Any, rss_kb: int) -> dict[str, Any]:
    lat_ms = sorted(x / 1e6 for x in received["lat_ns"])
    post_ms = sorted((a - s) / 1e6 for s, a in zip(sent["sent_ns"], sent["acked_ns"],
                                                   strict=True) if a)
    # delivered to the subscriber before the producer had its HTTP response?
    acked = dict(enumerate(sent["acked_ns"]))
    arrived = [s + lat for s, lat in zip((sent["sent_ns"][i] for i in received["i"]),
                                         received["lat_ns"], strict=True)]
    before_ack = sum(1 for i, t in zip(received["i"], arrived, strict=True)
                     if acked.get(i) and t < acked[i])
    seqs = received["seq"]
    window = end.at - start.at
    server_s = end.server_cpu_s - start.server_cpu_s
    db_s = (end.db_cpu_s - start.db_cpu_s) if end.db_cpu_s is not None else None
    machine = end.machine.busy_cores_since(start.machine, window)
    clients_s = sent["cpu_s"] + received["cpu_s"]
    late = sorted(sent["late_s"])
    return {
        "n": n, "rate": args.rate, "producer_connections": args.sse_connections,
        "received": len(lat_ms), "distinct": len(set(received["i"])),
        "in_seq_order": all(a < b for a, b in itertools.pairwise(seqs)),
        "non_201": sum(1 for s in sent["status"] if s != 201),
        "latency_ms": _dist(lat_ms),
        "post_latency_ms": _dist(post_ms),
        "delivered_before_post_returned": before_ack / max(1, len(lat_ms)),
        "producer_rate": n / sent["wall_s"],
        "producer_late_ms": {"p99": percentile(late, 99) * 1000, "max": late[-1] * 1000},
        "cpu_cores": {"server": server_s / window,
                      "db": None if db_s is None else db_s / window,
                      "clients": clients_s / window,
                      "other": machine - (server_s + (db_s or 0.0) + clients_s) / window,
                      "machine": machine},
        "server_rss_peak_mb": rss_kb / 1024,
    }


def _dist(sorted_ms: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(sorted_ms, 50), "p90": percentile(sorted_ms, 90),
            "p99": percentile(sorted_ms, 99),
            "max": sorted_ms[-1] if sorted_ms else float("nan")}


# -------------------------------------------------------------- the peers


PEER_RUN = """
import json, sys
peers, n, rate, backend, redis_port, dsn, timeout = sys.argv[1:8]
sys.argv = ["bench_pubsub.py", "--runs", "1", "--n", n, "--rate", rate, "--mode", "paced",
            "--backends", backend, "--timeout", timeout]
sys.path.insert(0, peers)
import redis
import bench_pubsub
Redis = redis.Redis
class _Redis:  # the script connects to 127.0.0.1:6390; ours listens elsewhere
    Redis = staticmethod(lambda host, port, **kw: Redis(host=host, port=int(redis_port), **kw))
bench_pubsub.redis = _Redis
bench_pubsub.PG_DSN = dsn
lat, first, last = bench_pubsub.one_run(backend)
print(json.dumps({"lat_ns": lat}))
"""


def measure_peer(backend: str, args: argparse.Namespace, redis_port: int, pg_dsn: str,
                 workdir: Path) -> dict[str, Any]:
    """The peers' ``bench_pubsub.one_run`` (paced mode: a forked subscriber, the
    publisher in this child), imported from ``../shared/peers`` with the Redis port and
    PostgreSQL DSN pointed at ours; nothing is written to their ``raw.jsonl``."""
    from common import MachineCpu

    timeout = args.sse_n / args.rate + 30
    before, started = MachineCpu.read(), time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", PEER_RUN, str(PEERS), str(args.sse_n), str(args.rate), backend,
         str(redis_port), pg_dsn, str(timeout)],
        capture_output=True, text=True, timeout=timeout + 30, check=True, cwd=workdir)
    machine = MachineCpu.read().busy_cores_since(before, time.monotonic() - started)
    lat_ms = sorted(x / 1e6 for x in json.loads(out.stdout.strip().splitlines()[-1])["lat_ns"])
    return {"n": args.sse_n, "rate": args.rate, "received": len(lat_ms),
            "latency_ms": _dist(lat_ms),
            # the whole machine while the script ran (its start included): a peer's
            # publisher and subscriber take a few hundredths; more is someone else
            "machine_cores": machine}


# ----------------------------------------------------------------- in-process


def measure_inprocess(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_inprocess(db, args))


async def _inprocess(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    from agentos import events
    from agentos.api.routes.events import _read, _render
    from agentos.store import open_store

    bodies = [event_body(n) for n in range(BATCH)]
    raw = json.dumps({"events": bodies}).encode()
    drafts = [events.EventIn.model_validate(b) for b in bodies]
    store = open_store(db.url)
    try:
        appended = await events.append(store, drafts)  # warm the pool and the statements
        warm_until = time.monotonic() + args.warmup
        while time.monotonic() < warm_until:
            await events.append(store, drafts)
        batches = 0
        cpu0, db0 = time.process_time(), tree_cpu_s(db.postmaster) if db.postmaster else None
        t0 = time.monotonic()
        end = t0 + args.seconds
        while time.monotonic() < end:
            await events.append(store, drafts)
            batches += 1
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        db_s = tree_cpu_s(db.postmaster) - db0 if db.postmaster and db0 is not None else None
    finally:
        await store.close()
    n = batches * BATCH

    def per_event_us(step: Callable[[], object], repeat: int = 5) -> float:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t)
        return best / BATCH * 1e6

    def respond() -> bytes:
        return _render(appended, True)

    return {
        "events_per_s": n / wall, "batches": batches, "seconds": wall,
        "cpu_us_per_event": cpu / max(1, n) * 1e6,
        "db_cpu_us_per_event": None if db_s is None else db_s / max(1, n) * 1e6,
        # the route's own pieces around events.append, best of 5 batches of 1,000
        "request_parse_validate_us_per_event": per_event_us(lambda: _read(raw)),
        "response_dicts_json_us_per_event": per_event_us(respond),
        "response_bytes_per_event": len(respond()) / BATCH,
    }


# ------------------------------------------------------------------ per backend


def run_backend(backend: str, args: argparse.Namespace, workdir: Path,
                cluster: PostgresCluster | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    took: dict[str, float] = {}
    lap = time.monotonic()

    def done(phase: str) -> None:
        nonlocal lap
        took[phase] = round(time.monotonic() - lap, 1)
        lap = time.monotonic()

    # latency first on each server: before the appends leave WAL, checkpoint or
    # routing work behind
    db = fresh_database(backend, f"{backend}_append", workdir, cluster)
    with Server(APP, server_env(db.url, background=False), workdir) as server:
        check_emit(server.base_url)
        done("setup")
        out["sse"] = measure_sse(server, db, args, args.sse_n)
        done("sse")
        out["append_one"] = measure_append(server, db, args, 1, args.clients,
                                           _profile(args, backend, "one"))
        out["append_batch"] = measure_append(server, db, args, BATCH, args.batch_clients,
                                             _profile(args, backend, "batch"))
        done("append")
    db = fresh_database(backend, f"{backend}_routed", workdir, cluster)
    with Server(APP, server_env(db.url, background=True), workdir) as server:
        check_emit(server.base_url)
        time.sleep(0.5)  # let the router take the two check events
        done("setup_routed")
        out["sse_routed"] = measure_sse(server, db, args, args.sse_n_routed)
        done("sse_routed")
        out["append_one_routed"] = measure_append(server, db, args, 1, args.clients, None)
        out["append_batch_routed"] = measure_append(server, db, args, BATCH,
                                                    args.batch_clients,
                                                    _profile(args, backend, "batch-on"))
        # the same appends once an agent listens to their type: each is queued, and
        # routed to nobody; then one of each request makes a task
        asyncio.run(publish_listener(db.url))
        out["append_batch_listened"] = measure_append(server, db, args, BATCH,
                                                      args.batch_clients,
                                                      _profile(args, backend, "batch-on+l"))
        asyncio.run(publish_listener(db.url, conditions=FILTER_ONE, version="2.0.0"))
        out["append_batch_tasks"] = measure_append(server, db, args, BATCH,
                                                   args.batch_clients,
                                                   _profile(args, backend, "batch-on+t"))
        done("append_routed")
    db = fresh_database(backend, f"{backend}_inprocess", workdir, cluster)
    out["inprocess"] = measure_inprocess(db, args)
    done("inprocess")
    out["phase_seconds"] = took
    return out


def _profile(args: argparse.Namespace, backend: str, run: str) -> Path | None:
    return args.py_spy / f"events-{backend}-{run}.txt" if args.py_spy else None


def report(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    started = time.monotonic()
    calib_before = calibrate()
    results: dict[str, Any] = {}
    peers: dict[str, Any] = {}
    db_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentos-bench-events-") as tmp:
        workdir = Path(tmp)
        cluster = start_postgres(durable=True) if "postgres" in args.backends or args.peers \
            else None
        try:
            if cluster is not None:
                db_info["postgres"] = postgres_info(cluster)
            db_info["sqlite"] = {"dir": str(workdir), "journal_mode": "wal",
                                 "synchronous": "NORMAL (the store's setting)",
                                 "sqlite_version": sqlite3.sqlite_version}
            for backend in args.backends:
                results[backend] = run_backend(backend, args, workdir, cluster)
            peers_took, peers_started = 0.0, time.monotonic()
            if args.peers:
                assert cluster is not None
                with RedisServer(workdir / "redis") as redis_server:
                    db_info["redis"] = {"version": redis_server.version(),
                                        "persistence": "off (--save '' --appendonly no)"}
                    peers["redis"] = measure_peer("redis", args, redis_server.port, "",
                                                  workdir)
                cluster.create_database("pubsub")
                peers["pg_notify"] = measure_peer("pg", args, 0, cluster.dsn("pubsub"), workdir)
                peers_took = round(time.monotonic() - peers_started, 1)
        finally:
            if cluster is not None:
                cluster.stop()
    return {
        "benchmark": "event log: HTTP appends, in-process appends, emit -> SSE latency; "
                     "peers: Redis pub/sub, PostgreSQL NOTIFY",
        "command": shlex.join(["python", "bench/bench_events.py", *argv]),
        "code": code_state(),
        "machine": {**machine_info(), "note": "clients, server and databases share these CPUs"},
        "calibration_iter_per_s": {"before": calib_before, "after": calibrate()},
        "config": {"quick": args.quick, "seconds": args.seconds, "warmup": args.warmup,
                   "clients": args.clients, "batch_clients": args.batch_clients,
                   "events_per_batch": BATCH, "sse_n": args.sse_n,
                   "sse_n_routed": args.sse_n_routed, "rate": args.rate,
                   "sse_connections": args.sse_connections,
                   "profiled_with_py_spy": bool(args.py_spy)},
        "databases": db_info,
        "backends": results,
        "peers": peers,
        "targets": targets(results, peers),
        "wall_seconds": time.monotonic() - started,
        "peers_seconds": peers_took,
    }


def postgres_info(cluster: PostgresCluster) -> dict[str, Any]:
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
             "wal_sync_method", "shared_buffers", "max_connections")
    return {"source": "throwaway cluster (bench/common.py start_postgres, durable)",
            **{n: cluster.psql(f"SHOW {n}").strip() for n in names}}


def targets(results: dict[str, Any], peers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend, res in results.items():
        batch = res["append_batch"]["events_per_s"]
        p50, p99 = (res["sse"]["latency_ms"][k] for k in ("p50", "p99"))
        row: dict[str, Any] = {
            "batched_append_events_per_s": batch,
            "batched_append_vs_50k_target": batch / BATCH_TARGET,
            "sse_p99_ms": p99, "sse_p99_vs_20ms_target": p99 / SSE_P99_TARGET_MS,
            "sse_routed_p99_ms": res["sse_routed"]["latency_ms"]["p99"],
            "sse_routed_p99_vs_20ms_target":
                res["sse_routed"]["latency_ms"]["p99"] / SSE_P99_TARGET_MS,
        }
        for peer, figures in peers.items():
            row[f"sse_p50_vs_{peer}_p50"] = p50 / figures["latency_ms"]["p50"]
            row[f"sse_p99_vs_{peer}_p99"] = p99 / figures["latency_ms"]["p99"]
        out[backend] = row
    return out


# ------------------------------------------------------------------ output


def render(data: dict[str, Any]) -> str:
    cfg, machine, code = data["config"], data["machine"], data["code"]
    calib = data["calibration_iter_per_s"]
    dbs = data["databases"]
    lines = [
        f"AgentOS event benchmark ({'--quick' if cfg['quick'] else 'full'}; "
        f"{data['wall_seconds']:.0f} s wall): loopback, one uvicorn process per phase",
        f"machine: {machine['nproc']} CPUs shared by clients, server and databases "
        f"({machine['cpu_model']}), Python {machine['python']}; calib.py "
        f"{_mega(calib['before'])} / {_mega(calib['after'])} M iter/s (before/after)",
        f"code: {code['commit']}" + (" + uncommitted changes in src/" if code["dirty"] else ""),
    ]
    if "postgres" in dbs:
        pg = dbs["postgres"]
        lines.append(f"PostgreSQL {pg['server_version'].split()[0]}: fsync={pg['fsync']}, "
                     f"synchronous_commit={pg['synchronous_commit']}, "
                     f"full_page_writes={pg['full_page_writes']} (durable, as the peers'); "
                     f"SQLite {dbs['sqlite']['sqlite_version']}: WAL, synchronous=NORMAL "
                     "(the store's setting), file in a temp dir on the work disk")
    if cfg["profiled_with_py_spy"]:
        lines.append("PROFILED with py-spy (appends, router off): those rates are low")
    lines += [
        "",
        f"Appends over HTTP, POST {EVENTS_PATH}: {cfg['seconds']:g} s measured after "
        f"{cfg['warmup']:g} s warm-up; raw keep-alive clients in one process, closed loop; "
        "events/s counted by the log (seq growth between the window edges)",
        f"{'backend':9}{'router':7}{'per req':>8}{'conns':>6}{'events/s':>10}{'req/s':>8}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'err':>5}{'srv µs/ev':>10}{'db µs/ev':>9}"
        f"{'cores: srv':>11}{'db':>5}{'cli':>5}{'other':>6}{'routed/s':>9}{'backlog':>8}",
    ]
    for backend, res in data["backends"].items():
        for key, router in (("append_one", "off"), ("append_batch", "off"),
                            ("append_one_routed", "on"), ("append_batch_routed", "on"),
                            ("append_batch_listened", "on+l"),
                            ("append_batch_tasks", "on+t")):
            if key in res:
                lines.append(_append_row(backend, router, res[key]))
    lines += ["", "In-process, events.append(store, [1000 EventIn]) in a loop (no HTTP, "
              "drafts validated once beforehand):",
              f"{'backend':9}{'events/s':>10}{'proc µs/ev':>11}{'db µs/ev':>9}"
              f"{'  route pieces, µs/ev: parse+validate':>38}{'response json':>14}"]
    for backend, res in data["backends"].items():
        ip = res["inprocess"]
        lines.append(f"{backend:9}{ip['events_per_s']:10.0f}{ip['cpu_us_per_event']:11.1f}"
                     f"{_num(ip['db_cpu_us_per_event'], 9, 1)}"
                     f"{ip['request_parse_validate_us_per_event']:38.1f}"
                     f"{ip['response_dicts_json_us_per_event']:14.1f}")
    lines += ["", f"Emit -> subscriber latency: events of ~100-byte payload paced at "
              f"{cfg['rate']:g}/s (one per request for AgentOS, over {cfg['sse_connections']} "
              "connections), one subscriber; producer, subscriber and server in separate processes",
              f"{'system':46}{'events':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
              f"{'POST p50/p99 ms':>17}{'cores: srv':>11}{'db':>5}{'other':>6}{'all':>5}"]
    for backend, res in data["backends"].items():
        for key, label in (("sse", "router off"), ("sse_routed", "router+scheduler on")):
            s = res[key]
            lat, post = s["latency_ms"], s["post_latency_ms"]
            ok = (s["received"] == s["distinct"] == s["n"] and s["in_seq_order"]
                  and not s["non_201"])
            lines.append(f"{'AgentOS ' + backend + ' SSE, ' + label:46}{s['received']:7d}"
                         f"{lat['p50']:8.2f}{lat['p90']:8.2f}{lat['p99']:8.2f}{lat['max']:8.1f}"
                         f"{post['p50']:9.2f} /{post['p99']:6.2f}"
                         f"{s['cpu_cores']['server']:11.2f}{_num(s['cpu_cores']['db'], 5, 2)}"
                         f"{s['cpu_cores']['other']:6.2f}{s['cpu_cores']['machine']:5.2f}"
                         + ("" if ok else f"  INCOMPLETE: {s['distinct']} of {s['n']}"))
    names = {"redis": "Redis PUBLISH -> SUBSCRIBE (peers' script)",
             "pg_notify": "PostgreSQL NOTIFY -> LISTEN (peers' script)"}
    for peer, res in data["peers"].items():
        lat = res["latency_ms"]
        lines.append(f"{names[peer]:46}{res['received']:7d}{lat['p50']:8.2f}{lat['p90']:8.2f}"
                     f"{lat['p99']:8.2f}{lat['max']:8.1f}{'':39}{res['machine_cores']:5.2f}")
    lines += ["", "Targets and ratios (issue 3):"]
    for backend, t in data["targets"].items():
        batch = t["batched_append_events_per_s"]
        goal = ("target" if backend == "sqlite" else "SQLite target, for reference")
        lines.append(f"  {backend}: batched append {batch:,.0f} events/s = "
                     f"{t['batched_append_vs_50k_target']:.2f}x the 50,000/s {goal}"
                     + (_verdict(t["batched_append_vs_50k_target"] >= 1)
                        if backend == "sqlite" else ""))
        lines.append(f"  {backend}: emit -> SSE p99 {t['sse_p99_ms']:.2f} ms (router off) = "
                     f"{t['sse_p99_vs_20ms_target']:.2f}x the 20 ms target"
                     + _verdict(t["sse_p99_vs_20ms_target"] <= 1)
                     + f"; router on: {t['sse_routed_p99_ms']:.2f} ms = "
                     f"{t['sse_routed_p99_vs_20ms_target']:.2f}x"
                     + _verdict(t["sse_routed_p99_vs_20ms_target"] <= 1))
        for peer, label in (("redis", "Redis"), ("pg_notify", "NOTIFY")):
            if f"sse_p50_vs_{peer}_p50" in t:
                lines.append(f"  {backend}: SSE (router off) vs {label}: "
                             f"p50 {t[f'sse_p50_vs_{peer}_p50']:.1f}x, "
                             f"p99 {t[f'sse_p99_vs_{peer}_p99']:.1f}x")
    lines += [*_notes(data), *_interference(data), "",
              "srv/db µs/ev = CPU of the server process / PostgreSQL (postmaster and backends) "
              "per event appended; cores = average busy during the window (other = everything "
              "else on the machine); routed/s = events the router took off its queue during "
              "the window, backlog = still queued at its end (router on: no trigger names the "
              "appended events' type, so none is queued; on+l, on+t: an agent listens to that "
              "type, so each is queued; on+l: with a filter none passes (PostgreSQL's take "
              "checks it, reading none back); on+t: one event of each request passes it and "
              "makes a task); "
              "POST = the producer's request "
              "latency (send -> 201); latency cores: all = the whole machine (for a peer: "
              "while its script ran, its interpreter start-up included)."]
    return "\n".join(lines)


def _append_row(backend: str, router: str, m: dict[str, Any]) -> str:
    cores, lat = m["cpu_cores"], m["latency_ms"]
    per = m["events_per_request"]
    return (f"{backend:9}{router:7}{per:8d}{m['clients']:6d}{m['events_per_s']:10.0f}"
            f"{m['rps']:8.0f}{lat['p50']:8.2f}{lat['p99']:8.2f}{m['errors']:5d}"
            f"{m['server_cpu_us_per_event']:10.1f}{_num(m['db_cpu_us_per_event'], 9, 1)}"
            f"{cores['server']:11.2f}{_num(cores['db'], 5, 2)}{cores['client']:5.2f}"
            f"{cores['other']:6.2f}"
            + (f"{m['routed_per_s']:9.0f}{m['route_backlog_at_end']:8d}" if router != "off"
               else f"{'-':>9}{'-':>8}"))


def _notes(data: dict[str, Any]) -> list[str]:
    out = []
    for backend, res in data["backends"].items():
        for key in ("append_one", "append_batch", "append_one_routed", "append_batch_routed"):
            m = res[key]
            client, server = m["events_per_s_client"], m["events_per_s"]
            if m["events_per_request"] == 1 and abs(server - client) > 0.1 * max(client, 1):
                out.append(f"  note: {backend} {key}: the log grew by {server:,.0f} events/s "
                           f"between the window edges, the client counted {client:,.0f}")
        for key in ("sse", "sse_routed"):
            s = res[key]
            if s["producer_late_ms"]["p99"] > 5 or s["producer_rate"] < 0.95 * s["rate"]:
                out.append(f"  note: {backend} {key} producer fell behind its schedule (p99 "
                           f"{s['producer_late_ms']['p99']:.1f} ms late, "
                           f"{s['producer_rate']:.0f}/s; server {s['cpu_cores']['server']:.2f} "
                           "cores): the server was (near) saturated at this rate")
    return ["", "Checks:", *out] if out else []


def _verdict(ok: bool) -> str:
    return "  (met)" if ok else "  (MISSED)"


def _interference(data: dict[str, Any]) -> list[str]:
    worst = max(res[k]["cpu_cores"]["other"] for res in data["backends"].values()
                for k in ("append_one", "append_batch", "append_one_routed",
                          "append_batch_routed", "sse", "sse_routed"))
    if worst < OTHER_LOAD_WARNING:
        return []
    return [f"WARNING: other processes used up to {worst:.2f} cores during a measured window; "
            "those figures are perturbed. Re-run on a quiet machine."]


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def _mega(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="1.5 s windows, 800 latency events: about 90 s")
    parser.add_argument("--seconds", type=float, help="measured, per append run (default 5)")
    parser.add_argument("--warmup", type=float, help="before each window (default 1)")
    parser.add_argument("--clients", type=int, default=8, help="connections, one event each")
    parser.add_argument("--batch-clients", type=int, default=4,
                        help="connections, 1,000 events per request")
    parser.add_argument("--sse-n", type=int,
                        help="latency events, router off and peers (default 10,000)")
    parser.add_argument("--sse-n-routed", type=int,
                        help="latency events with the router on (default 1,000)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="events/s for the latency runs, ours and the peers' (default 100: "
                             "a paced one-event POST costs the server 3-6 ms of CPU here, so "
                             "200/s already saturates it on PostgreSQL)")
    parser.add_argument("--sse-connections", type=int, default=4,
                        help="the latency producer's connections (open loop)")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="skip Redis and NOTIFY")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="record py-spy stacks of the server during the appends "
                             "(router off, one and 1,000 a request; router on, 1,000 a "
                             "request: on, on+l, on+t) into DIR (slows them)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (1.5 if quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 1.0)
    args.sse_n = args.sse_n or (800 if quick else 10_000)
    args.sse_n_routed = args.sse_n_routed or (150 if quick else 1000)
    return args


CHILDREN = {"post-load": post_load, "sse-produce": sse_produce, "sse-subscribe": sse_subscribe}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CHILDREN:
        CHILDREN[argv[0]](argv[1:])
        return
    run_bench(parse_args, report, render, argv)


if __name__ == "__main__":
    main()
