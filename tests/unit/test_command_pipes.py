"""A command handler's pipes (``command.exchange``) with children that do not play
along, on asyncio's own loop and on uvloop (the server's loop under uvicorn, where
``communicate`` failed with "WriteUnixTransport ... handler is closed")."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

import pytest
import uvloop

from agentos.worker.handlers import command

MIB = 1024 * 1024
BIG_INPUT = json.dumps({"blob": "x" * (4 * MIB)}).encode()  # far more than a pipe buffer

NEVER_READS = "import sys; print('{\"n\": 1}')"
CLOSES_STDIN = "import os, sys, time; os.close(0); time.sleep(0.2); print('{\"n\": 2}')"
EXITS_FIRST = "import sys; sys.exit(0)"
READS_SOME = "import sys; sys.stdin.read(10); print('{\"n\": 3}')"
FLOODS = ("import sys; sys.stdin.read()\n"
          "sys.stderr.write('e' * (1024 * 1024) + 'the end of stderr')\n"
          "sys.stdout.write('{\"pad\": \"' + 'y' * (10 * 1024 * 1024) + '\"}')")
FLOODS_UNREAD = "import sys; sys.stdout.write('{\"pad\": \"' + 'z' * (10 * 1024 * 1024) + '\"}')"

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def exchange(code: str, data: bytes, loop: str, head_start_s: float = 0.0
             ) -> tuple[int | None, bytes, bytes]:
    async def go() -> tuple[int | None, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await asyncio.sleep(head_start_s)  # the child may be gone before a byte is written
        out, err = await asyncio.wait_for(command.exchange(proc, data, "child"), 60)
        return proc.returncode, out, err

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(go())


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize(("code", "n"), [(NEVER_READS, 1), (CLOSES_STDIN, 2),
                                         (READS_SOME, 3)])
def test_a_child_that_does_not_read_its_input(code: str, n: int, loop: str) -> None:
    for _ in range(5):  # the failure depended on who came first
        status, out, _ = exchange(code, BIG_INPUT, loop)
        assert (status, json.loads(out)) == (0, {"n": n})


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_child_that_exits_first(loop: str) -> None:
    for _ in range(5):
        assert exchange(EXITS_FIRST, BIG_INPUT, loop) == (0, b"", b"")
    # gone, its pipes closed by the loop, before the input is written
    assert exchange(EXITS_FIRST, b"{}", loop, head_start_s=0.5) == (0, b"", b"")


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_ten_mib_of_output_and_the_tail_of_stderr(loop: str) -> None:
    status, out, err = exchange(FLOODS, BIG_INPUT, loop)
    assert status == 0 and len(json.loads(out)["pad"]) == 10 * MIB
    assert len(err) == command.STDERR_KEPT_BYTES and err.endswith(b"the end of stderr")
    status, out, _ = exchange(FLOODS_UNREAD, BIG_INPUT, loop)  # output before input
    assert status == 0 and len(json.loads(out)["pad"]) == 10 * MIB
