"""Task logs: the lines a handler writes with ``ctx.log``, kept per attempt.

Writing never costs the worker a round trip of its own. Each running attempt buffers
its lines in an ``AttemptLog`` (numbered 1, 2, ... within the attempt, bounded by
``Limits``); the worker hands them to the statement that already goes to the database:
the round trip that records the attempt's end (success, failure, hand-back), and the
lease keeper's heartbeat of every running attempt, so a follower sees a running task's
lines within a third of a lease. A remote worker sends its lines with its heartbeat,
complete and fail requests; the server numbers and bounds them (``write_in``).

An attempt keeps at most ``max_lines`` lines and ``max_bytes`` bytes of messages
(AGENTOS_TASK_LOG_MAX_LINES, AGENTOS_TASK_LOG_MAX_BYTES); the first line past either is
replaced by one line of level ``truncated`` saying so, and the rest are dropped. Lines
are deleted with their task, and an ended task's lines once they are older than
AGENTOS_TASK_LOG_RETENTION_DAYS (``prune``; the server sweeps every 10 minutes).
Levels: ``debug`` (kept only while the process logs debug), ``info``, ``warning``,
``error``, ``critical``, ``stderr`` (a command's), ``truncated``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import traceback
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.aio import wait_wakeup
from agentos.config import Settings
from agentos.errors import InvalidInput, NotFound
from agentos.store import Store
from agentos.store import task_logs as store_logs
from agentos.tasks import Status

MAX_LINE_CHARS = 16_384  # one line's message is cut here (the rest of its bytes still count)
MAX_PAGE = 1000
DEFAULT_PAGE = 500
MAX_REMOTE_LINES = 1000  # lines one remote request may carry
TRUNCATED = "truncated"
PRUNE_BATCH = 5000  # lines one retention statement deletes (a short write transaction)
SWEEP_INTERVAL_S = 600.0  # seconds between the server's retention sweeps
log = logging.getLogger(__name__)
_CURSOR = re.compile(r"([0-9]{1,9}):([0-9]{1,9})")


@dataclass(frozen=True)
class Limits:
    """How much of an attempt's log is kept."""

    max_lines: int = 1000
    max_bytes: int = 256 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.task_log_max_lines, settings.task_log_max_bytes)


@dataclass(frozen=True, slots=True)
class Line:
    """One kept line: the row ``task_logs`` stores."""

    task_id: str
    attempt: int
    line: int
    at: datetime
    level: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "line": self.line, "at": self.at.isoformat(),
                "level": self.level, "message": self.message}


def clean(message: str) -> str:
    """A message any database stores: no NUL, valid UTF-8, at most ``MAX_LINE_CHARS``."""
    if "\x00" in message:
        message = message.replace("\x00", "\ufffd")
    if not message.isascii():
        message = message.encode("utf-8", "replace").decode("utf-8")
    if len(message) > MAX_LINE_CHARS:
        message = message[:MAX_LINE_CHARS] + " [cut]"
    return message


@dataclass
class AttemptLog:
    """One attempt's lines: numbered, bounded, waiting for the next write (``take``).
    Thread-safe: a sync handler writes from its own thread."""

    task_id: str
    attempt: int
    limits: Limits = field(default_factory=Limits)
    lines: int = 0  # numbered so far (kept ones)
    bytes: int = 0
    capped: bool = False
    dropped: int = 0
    _pending: list[Line] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def add(self, level: str, message: str, at: datetime | None = None) -> None:
        """Keep a line, or drop it once the attempt's log is full (the first one past
        the bounds becomes the ``truncated`` line)."""
        message = clean(message)
        size = len(message) if message.isascii() else len(message.encode("utf-8"))
        at = at or datetime.now(UTC)
        with self._guard:
            if self.capped:
                self.dropped += 1
                return
            if self.lines >= self.limits.max_lines or self.bytes + size > self.limits.max_bytes:
                self.capped = True
                self.dropped += 1
                level, message = TRUNCATED, (
                    f"log truncated: an attempt keeps {self.limits.max_lines} lines and "
                    f"{self.limits.max_bytes} bytes (AGENTOS_TASK_LOG_MAX_LINES, "
                    "AGENTOS_TASK_LOG_MAX_BYTES); this line and the later ones are dropped")
            else:
                self.bytes += size
            self.lines += 1
            self._pending.append(Line(self.task_id, self.attempt, self.lines, at, level,
                                      message))

    def take(self) -> list[Line]:
        """The lines not written yet (the caller writes them)."""
        with self._guard:
            taken, self._pending = self._pending, []
        return taken

    def give_back(self, lines: list[Line]) -> None:
        """Lines whose write failed: written with the next one."""
        with self._guard:
            self._pending[:0] = lines


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """``ctx.log``: a logger whose lines also go to the attempt's log. Lines at ``info``
    and above are kept whatever the process logs; ``debug`` ones only while it logs
    debug. The process log gets them as before (tagged with the task id)."""

    def __init__(self, logger: logging.Logger, extra: dict[str, Any], sink: AttemptLog
                 ) -> None:
        super().__init__(logger, extra)
        self.sink = sink

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.INFO or self.isEnabledFor(level):
            self.sink.add(logging.getLevelName(level).lower(), _render(msg, args, kwargs))
        # the process log names the handler's line as the caller, not this one
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        super().log(level, msg, *args, **kwargs)


def _render(msg: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The line as a formatter would print its message (and its exception)."""
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        text = f"{msg} {args!r}"
    exc_info = kwargs.get("exc_info")
    if exc_info:
        if isinstance(exc_info, BaseException):
            text += "\n" + "".join(traceback.format_exception(exc_info)).rstrip()
        elif isinstance(exc_info, tuple) and exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(exc_info[1])).rstrip()
        else:
            text += "\n" + traceback.format_exc().rstrip()
    return text


# ------------------------------------------------------------------ remote


@dataclass(frozen=True)
class Sent:
    """A line as a remote worker sends it."""

    level: str
    message: str
    at: datetime | None = None


@dataclass(frozen=True)
class Remote:
    """A remote worker's lines for one attempt: numbered and bounded when written."""

    sent: list[Sent]
    limits: Limits


Logs = Sequence[Line] | Remote  # what an attempt's end or heartbeat writes


def any_lines(logs: Logs) -> bool:
    """Whether ``logs`` has a line to write."""
    return bool(logs.sent if isinstance(logs, Remote) else logs)


async def write_in(conn: AsyncConnection, task_id: str, attempt: int, logs: Logs) -> None:
    """Write an attempt's lines within the caller's write transaction: a local worker's
    as numbered, a remote worker's after those kept already, bounded the same way."""
    if isinstance(logs, Remote):
        if not logs.sent:
            return
        kept = await store_logs.attempt_state(conn, task_id, attempt)
        log = AttemptLog(task_id, attempt, logs.limits, kept.lines, kept.bytes, kept.capped)
        for item in logs.sent:
            log.add(item.level, item.message, item.at)
        logs = log.take()
    await store_logs.insert_in(conn, logs)


# ------------------------------------------------------------------- reads


def parse_cursor(after: str | None) -> tuple[int, int] | None:
    """``ATTEMPT:LINE`` (a page's ``next_after``), or None from the start."""
    if after is None:
        return None
    match = _CURSOR.fullmatch(after)
    if match is None:
        raise InvalidInput("after must be ATTEMPT:LINE, e.g. 2:17 (a page's next_after)",
                           code="bad_cursor", details={"after": after})
    return int(match.group(1)), int(match.group(2))


async def page(store: Store, task_id: str, *, attempt: int | None = None,
               after: str | None = None, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    """A page of the task's lines in order (attempt, then line), with the task's status
    and attempt (so a follower knows when no more will come) and ``next_after`` when
    more are kept now; 404 for an unknown task."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    start = parse_cursor(after)
    async with store.read() as conn:
        task = await store_logs.task_state(conn, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}", code="task_not_found",
                           details={"task_id": task_id})
        rows = await store_logs.page(conn, task_id, attempt, start, limit + 1)
    lines = [Line(task_id, r.attempt, r.line, r.at, r.level, r.message) for r in rows[:limit]]
    last = lines[-1] if lines else None
    return {"task_id": task_id, "status": task.status, "attempt": task.attempt,
            "lines": [x.to_dict() for x in lines],
            "next_after": f"{last.attempt}:{last.line}" if last and len(rows) > limit
            else None}


# --------------------------------------------------------------- retention


async def prune(store: Store, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete the log lines of ended tasks written more than ``older_than`` ago, in
    transactions of ``batch`` lines (writers wait for one batch, not the whole sweep);
    a running or waiting task's lines stay however old. Returns how many went."""
    cutoff = datetime.now(UTC) - older_than
    ended = [s.value for s in Status if s.final]
    deleted = 0
    while True:
        async with store.write() as conn:
            gone = await store_logs.delete_old(conn, cutoff, ended, batch)
        deleted += gone
        if gone < batch:
            return deleted


async def run_retention(store: Store, stop: asyncio.Event, days: float) -> None:
    """The server's sweep: ``prune`` every ``SWEEP_INTERVAL_S`` until ``stop``."""
    while not stop.is_set():
        try:
            gone = await prune(store, timedelta(days=days))
            if gone:
                log.info("deleted %d task log lines older than %g days", gone, days,
                         extra={"action": "task_logs_pruned"})
        except Exception:
            log.exception("task log retention failed; trying again",
                          extra={"action": "task_logs_prune_failed"})
        await wait_wakeup(stop, SWEEP_INTERVAL_S)
