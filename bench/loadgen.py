"""A closed-loop HTTP/1.1 load generator, run by the benchmarks as its own process.

``--clients`` workers each send one GET at a time over a keep-alive connection,
cycling through the paths in ``--paths-file`` (each worker from its own offset).
After ``--warmup`` seconds the measured window of ``--seconds`` starts; only
requests that start and finish inside it are counted. The run is bounded in
time (the window, plus a per-request timeout) and in count (``--max-requests``).

Two clients: ``raw`` (asyncio streams, one connection per worker, minimal
parsing: status line and Content-Length) and ``httpx`` (one ``AsyncClient``
with a pool of ``--clients`` connections). The raw client costs far less CPU
per request, which matters when client and server share two cores.

stdout: a ``window-start`` line and a ``window-end`` line at the edges of the
window (so the parent can read server CPU there), then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import percentile

Get = Callable[[str], Awaitable[int]]


class ProtocolError(Exception):
    """The server's answer is not something this minimal client understands."""


class RawConnection:
    """One keep-alive HTTP/1.1 connection; reconnects after an error or ``Connection: close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"{host}:{port}".encode()
        token = os.environ.get("AGENTOS_TOKEN")  # the API needs a credential; /health does not
        self._auth = f"\r\nAuthorization: Bearer {token}".encode() if token else b""

    async def get(self, path: str) -> int:
        try:
            return await self._exchange(path)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, path: str) -> int:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + self._host_header
                           + self._auth + b"\r\n\r\n")
        head = await self._reader.readuntil(b"\r\n\r\n")
        status, length, keep_alive = _parse_head(head)
        await self._reader.readexactly(length)
        if not keep_alive:
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def aclose(self) -> None:
        self.close()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and keep-alive from a response head."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 "):
        raise ProtocolError(f"unexpected status line {lines[0][:40]!r}")
    status = int(lines[0][9:12])
    length: int | None = None
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif name == b"transfer-encoding":
            raise ProtocolError("chunked responses are not supported by the raw client")
    if length is None:
        raise ProtocolError("response without Content-Length")
    return status, length, keep_alive


class HttpxClient:
    """One shared ``httpx.AsyncClient`` with a pool of ``size`` keep-alive connections."""

    def __init__(self, base_url: str, size: int, timeout: float) -> None:
        import httpx  # only this client needs it

        token = os.environ.get("AGENTOS_TOKEN")
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else None,
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))

    async def get(self, path: str) -> int:
        response = await self._client.get(path)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


# ---------------------------------------------------------------- the run


@dataclass
class Window:
    """The measured interval (monotonic seconds) and the request budget."""

    start: float
    end: float
    max_requests: int
    issued: int = 0

    def open_for(self, now: float) -> bool:
        return now < self.end and self.issued < self.max_requests


@dataclass
class Tally:
    latencies: array[float] = field(default_factory=lambda: array("d"))
    outcomes: Counter[str] = field(default_factory=Counter)

    def record(self, window: Window, started: float, finished: float, outcome: str) -> None:
        if window.start <= started and finished <= window.end:
            self.latencies.append(finished - started)
            self.outcomes[outcome] += 1


async def worker(get: Get, paths: Sequence[str], offset: int, window: Window, tally: Tally,
                 timeout: float) -> None:
    i = offset
    while window.open_for(started := time.monotonic()):
        window.issued += 1
        try:
            async with asyncio.timeout(timeout):
                outcome = str(await get(paths[i % len(paths)]))
        except Exception as exc:  # every failure is a counted error, not a crash
            outcome = type(exc).__name__
        tally.record(window, started, time.monotonic(), outcome)
        i += 1


async def mark_window(window: Window, cpu: dict[str, float]) -> None:
    """Print the window's edges for the parent and note this process's CPU there."""
    await asyncio.sleep(max(0.0, window.start - time.monotonic()))
    cpu["start"] = time.process_time()
    print("window-start", flush=True)
    await asyncio.sleep(max(0.0, window.end - time.monotonic()))
    cpu["end"] = time.process_time()
    print("window-end", flush=True)


def make_getters(kind: str, base_url: str, clients: int, timeout: float
                 ) -> tuple[list[Get], list[RawConnection | HttpxClient]]:
    if kind == "httpx":
        shared = HttpxClient(base_url, clients, timeout)
        return [shared.get] * clients, [shared]
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port, f"need host and port in {base_url}"
    connections = [RawConnection(parts.hostname, parts.port) for _ in range(clients)]
    return [c.get for c in connections], list(connections)


async def run(args: argparse.Namespace, paths: list[str]) -> dict[str, Any]:
    getters, closers = make_getters(args.client, args.url, args.clients, args.timeout)
    start = time.monotonic() + args.warmup
    window = Window(start, start + args.seconds, args.max_requests)
    tally, cpu = Tally(), dict[str, float]()
    stride = max(1, len(paths) // args.clients)
    try:
        async with asyncio.timeout(args.warmup + args.seconds + args.timeout + 5):
            await asyncio.gather(
                mark_window(window, cpu),
                *(worker(get, paths, n * stride, window, tally, args.timeout)
                  for n, get in enumerate(getters)))
    finally:
        for closer in closers:
            await closer.aclose()
    return summarise(args, tally, cpu.get("end", time.process_time()) - cpu.get("start", 0.0))


def summarise(args: argparse.Namespace, tally: Tally, client_cpu_s: float) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    ok = tally.outcomes.get("200", 0)
    return {
        "client": args.client,
        "loop": args.loop,
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "outcomes": dict(tally.outcomes),
        "rps": len(latencies) / args.seconds,
        "latency_ms": {
            "p50": percentile(latencies, 50) * 1000,
            "p90": percentile(latencies, 90) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "max": (latencies[-1] if latencies else float("nan")) * 1000,
            "mean": (statistics.fmean(latencies) if latencies else float("nan")) * 1000,
        },
        "client_cpu_s": client_cpu_s,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--paths-file", type=Path, required=True, help="one path per line")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    parser.add_argument("--max-requests", type=int, default=10_000_000)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    paths = [p for p in args.paths_file.read_text().splitlines() if p]
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(run(args, paths))
    else:
        result = asyncio.run(run(args, paths))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
