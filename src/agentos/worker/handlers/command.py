"""``command`` handlers: a subprocess reading the input as JSON on stdin and writing
its output as a JSON object on stdout.

``argv`` runs as given, never through a shell. The child sees a minimal
environment (``PASSED_ENV`` from the worker's, never its secrets), then
``AGENTOS_TASK_ID``, ``AGENTOS_AGENT`` and ``AGENTOS_ATTEMPT``, then the
handler's ``env``. It leads its own process group, so stopping it stops what
it started too: when the handler is cancelled (timeout, cancel, shutdown) the
group gets SIGTERM, then SIGKILL after ``TERM_GRACE`` seconds; once the child
exits on its own, anything it left behind in the group gets SIGKILL.

Non-zero exit fails the attempt (retryable) quoting the tail of stderr, also kept as
the attempt error's ``stderr``; stdout that is not a JSON object fails it for good
(empty stdout is ``{}``). The input is written while the output is read, and a child
that does not read it all is no error of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from typing import Any

from agentos import agent_spec
from agentos.worker.handlers.context import Context, Handler, HandlerError

TERM_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a command is stopped
STDERR_TAIL = 2000  # characters of stderr quoted in an error (and kept as its "stderr")
STDERR_KEPT_BYTES = 64 * 1024  # of stderr held while the child runs: its tail only
MAX_STDOUT_BYTES = 256 * 1024 * 1024  # of stdout (the output): past it the attempt fails
READ_CHUNK = 64 * 1024  # bytes asked of a pipe at a time
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


def make(spec: agent_spec.CommandHandler) -> Handler:
    """The handler; a program that cannot be found here makes the handler unloadable
    here (FileNotFoundError), so the worker leaves its tasks to one that has it."""
    program = spec.argv[0]
    found = shutil.which(program, path=environment(spec.env, {})["PATH"]) \
        if os.sep not in program else program
    if found is None or not os.access(os.path.join(spec.cwd or "", found), os.X_OK):
        raise FileNotFoundError(f"no program {program} to run here (PATH, or cwd "
                                f"{spec.cwd or '.'}): install it or run this agent's "
                                "worker where it is")

    async def run(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=environment(spec.env, ctx.task),
                cwd=spec.cwd, start_new_session=True)
        except OSError as exc:  # no such program or cwd, not executable
            raise HandlerError(f"cannot start {program}: {exc}", retryable=False) from exc
        try:
            stdout, stderr = await exchange(proc, json.dumps(data).encode(), program)
        except BaseException:
            await stop(proc)
            raise
        finally:
            _signal_group(proc, signal.SIGKILL)  # strays it left in its group
        err = stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            kept = err[-STDERR_TAIL:].strip()
            raise HandlerError(f"{program} {_how_it_ended(proc.returncode)}; stderr: "
                               f"{kept or '(empty)'}", fields={"stderr": kept})
        if err.strip():
            ctx.log.debug("stderr of %s: %s", program, err[-STDERR_TAIL:],
                          extra={"action": "command_stderr"})
        return parse_output(program, stdout)

    return run


async def exchange(proc: asyncio.subprocess.Process, data: bytes, program: str
                   ) -> tuple[bytes, bytes]:
    """Write ``data`` to the child's stdin while reading its stdout and stderr, until it
    has exited: (stdout, the last ``STDERR_KEPT_BYTES`` of stderr). A child that never
    reads its input, closes stdin early or exits before reading it all only loses the
    input it did not want (``communicate`` failed the attempt with an error of its own
    pipe transport then). Stdout past ``MAX_STDOUT_BYTES`` fails the attempt for good."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feeding = asyncio.create_task(_feed(proc.stdin, data))
    try:
        out, err = await asyncio.gather(_read_all(proc.stdout, program),
                                        _read_tail(proc.stderr))
        await proc.wait()
    finally:
        # once stdout is closed the rest of the input has no reader: stop writing it
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        if not proc.stdin.transport.is_closing():  # input left unwritten: drop it
            proc.stdin.transport.abort()
    return out, err


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stdin.write(data)
        await stdin.drain()
        stdin.close()
    # the child closed its end (or exited): a broken pipe, a reset, or the transport
    # already closed under the writer ("handler is closed")
    except (BrokenPipeError, ConnectionResetError, RuntimeError):
        pass


async def _read_all(stream: asyncio.StreamReader, program: str) -> bytes:
    chunks, size = [], 0
    while chunk := await stream.read(READ_CHUNK):
        size += len(chunk)
        if size > MAX_STDOUT_BYTES:
            raise HandlerError(f"{program} printed more than {MAX_STDOUT_BYTES} bytes on "
                               "stdout", retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_tail(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(READ_CHUNK):
        kept += chunk
        if len(kept) > 2 * STDERR_KEPT_BYTES:  # trimmed now and then, not every chunk
            del kept[:-STDERR_KEPT_BYTES]
    return bytes(kept[-STDERR_KEPT_BYTES:])


def environment(extra: dict[str, str], task: dict[str, Any]) -> dict[str, str]:
    """The child's environment: a minimal base, the task's identity (when ``task`` is
    given), the handler's env."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    if task:
        env.update(AGENTOS_TASK_ID=str(task["id"]), AGENTOS_AGENT=str(task["agent"]),
                   AGENTOS_ATTEMPT=str(task["attempt"]))
    return {**env, **extra}


def parse_output(program: str, stdout: bytes) -> dict[str, Any]:
    text = stdout.decode("utf-8", "replace").strip()
    if not text:
        return {}
    try:
        output = json.loads(text)
    except ValueError:
        raise HandlerError(f"{program} must print one JSON object on stdout, got "
                           f"{text[:200]!r}", retryable=False) from None
    if not isinstance(output, dict):
        raise HandlerError(f"{program} must print a JSON object on stdout, got "
                           f"{type(output).__name__}", retryable=False)
    return output


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's group, SIGKILL it after ``TERM_GRACE``; reap the child."""
    _signal_group(proc, signal.SIGTERM)
    try:
        async with asyncio.timeout(TERM_GRACE):
            await proc.wait()
    except TimeoutError:
        pass
    finally:  # also when cancelled again while waiting
        _signal_group(proc, signal.SIGKILL)
    await proc.wait()


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    # the group outlives its leader while members remain, and Linux does not
    # reuse a pid still in use as a group id: signalling it after the leader exited is safe
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _how_it_ended(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
