"""Following the log live: the SSE stream, two servers on one PostgreSQL, ``events tail``.

Every wait is bounded: an SSE read times out after READ_TIMEOUT, a line from
a subprocess after LINE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from agentos import events
from agentos.cli import output
from agentos.sdk import Client
from agentos.store import open_store
from tests.acceptance import conftest
from tests.acceptance.conftest import AGENTOS, Server, environment, start

READ_TIMEOUT = 5.0  # seconds an SSE read may block
LINE_TIMEOUT = 10.0  # seconds to wait for a line from `agentos events tail`
# PostgreSQL's polling fallback wakes a server every 2 s; NOTIFY must beat it
NOTIFY_BOUND = 1.5  # seconds


class Sse:
    """One raw Server-Sent Events connection, read block by block."""

    def __init__(self, url: str, type_glob: str, last_event_id: str | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        headers["Authorization"] = f"Bearer {os.environ['AGENTOS_TOKEN']}"
        self._http = httpx.Client(base_url=url, timeout=httpx.Timeout(5.0, read=READ_TIMEOUT))
        self._response = self._http.send(self._http.build_request(
            "GET", "/api/v1/events/stream", params={"type": type_glob}, headers=headers),
            stream=True)
        assert self._response.status_code == 200, self._response.read()
        assert self._response.headers["content-type"].startswith("text/event-stream")
        self._lines = self._response.iter_lines()

    def block(self) -> list[str]:
        """The lines up to the next blank one."""
        lines: list[str] = []
        for line in self._lines:
            if not line:
                return lines
            lines.append(line)
        raise AssertionError(f"the stream ended after {lines}")

    def event(self) -> dict[str, Any]:
        """The next event (skipping keep-alive comments); its ``id:`` must be its seq."""
        while (block := self.block()) == [": keep-alive"]:
            pass
        assert [line.split(": ", 1)[0] for line in block] == ["id", "data"], block
        event: dict[str, Any] = json.loads(block[1].removeprefix("data: "))
        assert block[0] == f"id: {event['seq']}"
        return event

    def close(self) -> None:
        self._response.close()
        self._http.close()


@pytest.fixture
def sse(server: Server) -> Iterator[list[Sse]]:
    """Connections to close after the test, before its server stops: a server
    waits for its open streams to end before it exits."""
    opened: list[Sse] = []
    yield opened
    for connection in opened:
        connection.close()


def connect(opened: list[Sse], url: str, type_glob: str,
            last_event_id: str | None = None) -> Sse:
    connection = Sse(url, type_glob, last_event_id)
    opened.append(connection)
    # the server subscribes before anything else happens on this connection, and
    # names its starting position so a reconnect before any event has no gap
    opening = connection.block()
    assert opening[0] == ": connected" and opening[1].startswith("id: ")
    return connection


def test_sse_resumes_after_last_event_id(server: Server, sse: list[Sse]) -> None:
    api = Client(server.url)
    stream = connect(sse, server.url, "s.*")
    # When 5 matching events are emitted, the stream has them in order, id = seq
    sent = [api.emit(f"s.{n}", {"n": n}).seq for n in range(5)]
    received = [stream.event() for _ in range(5)]
    assert [e["seq"] for e in received] == sent
    assert [e["type"] for e in received] == [f"s.{n}" for n in range(5)]
    stream.close()

    # While nobody listens, 5 more, with look-alikes that do not match s.*
    batch = api.emit_batch([{"type": t} for t in (
        "s.5", "x.s", "s.6", "s", "sx.7", "s.7", "s.8", "x.s.9", "s.9")])
    missed = [e.seq for e in batch if e.type.startswith("s.")]
    assert len(missed) == 5

    # Then resuming after the last id seen gives exactly those, then live ones
    resumed = connect(sse, server.url, "s.*", last_event_id=str(sent[-1]))
    assert [resumed.event()["seq"] for _ in range(5)] == missed
    live = api.emit("s.live")
    assert resumed.event()["id"] == live.id
    api.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_servers_on_one_postgres_stream_each_others_events(
        server: Server, database_url: str, tmp_path: Path, sse: list[Sse]) -> None:
    other = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    try:
        on_a = connect(sse, server.url, "from.b.*")
        on_b = connect(sse, other.url, "from.a.*")
        latencies = []
        with Client(server.url) as a, Client(other.url) as b:
            # each event is emitted as soon as the previous one arrived: just after
            # a poll, so only a NOTIFY can bring it before the next poll, 2 s later
            for writer, reader, tag in ((b, on_a, "b"), (a, on_b, "a")):
                for n in range(3):
                    began = time.monotonic()
                    sent = writer.emit(f"from.{tag}.{n}")
                    assert reader.event()["id"] == sent.id
                    latencies.append(time.monotonic() - began)
        assert max(latencies) < NOTIFY_BOUND, latencies
    finally:
        for connection in sse:
            connection.close()
        other.stop()


class Lines:
    """A pipe's lines, read by a thread so that waiting for one can be bounded."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))

    def next(self) -> str:
        try:
            line = self._queue.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no line in {LINE_TIMEOUT}s after {self.seen}") from None
        self.seen.append(line)
        return line

    def expect(self, text: str) -> None:
        while self.next() != text:
            pass


async def _append_directly(database_url: str, event_type: str) -> int:
    store = open_store(database_url)
    try:
        appended = await events.append(store, [events.EventIn(type=event_type)])
    finally:
        await store.close()
    return appended[0].event.seq


@pytest.mark.parametrize("backend", ["sqlite"])
def test_tail_follows_live_and_resumes_after_the_server_dies(
        server: Server, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = Client(server.url)
    env = environment(AGENTOS_URL=server.url, AGENTOS_TOKEN=server.token)
    restarted: Server | None = None
    with subprocess.Popen([*AGENTOS, "events", "tail", "--type", "t.*"], cwd=tmp_path,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as tail:
        assert tail.stdout and tail.stderr
        out, err = Lines(tail.stdout), Lines(tail.stderr)
        try:
            err.expect("following t.* events (Ctrl+C to stop)")
            # When events are emitted after it started, it prints the matching one
            api.emit("x.noise")
            first = api.emit("t.one", {"n": 1}, priority="high")
            assert out.next().split() == [str(first.seq),
                                          output.timestamp(first.created_at),
                                          "t.one", "api", "high", '{"n":1}']

            # When the server dies and an event is appended meanwhile
            server.process.kill()
            server.process.wait()
            err.expect("connection lost; reconnecting")
            missed = asyncio.run(_append_directly(database_url, "t.two"))
            # Then a new server on the same address: the tail resumes after t.one
            port = int(server.url.rsplit(":", 1)[1])
            monkeypatch.setattr(conftest, "free_port", lambda: port)
            restarted = start("serve", tmp_path, environment(
                AGENTOS_DATABASE_URL=database_url))
            assert out.next().split()[::2] == [str(missed), "t.two", "normal"]
            err.expect("reconnected")
            live = api.emit("t.three")
            assert out.next().split()[0] == str(live.seq)

            # Ctrl+C ends it with exit 0
            tail.send_signal(signal.SIGINT)
            assert tail.wait(LINE_TIMEOUT) == 0
            assert len(out.seen) == 3  # x.noise was never printed
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
            if restarted is not None:
                restarted.stop()
            api.close()
