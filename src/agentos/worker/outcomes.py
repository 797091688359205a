"""How a handler's end becomes its attempt's end: one table, read top to bottom.

    the handler ...                       the attempt          the task
    returned a dict                       succeeded            succeeded
    returned anything else                succeeded            succeeded, {"result": value}
    ran past the task's timeout_s         timeout              retried with backoff, or failed
    was cancelled on request              cancelled            cancelled
    was cancelled by the worker stopping  (handed back)        pending again, not counted
    raised BudgetSpent (an LLM call       deferred             waits, not counted: pending
      refused by a spent hard budget)                            (its agent's budget holds
                                                                 it) or scheduled (a model's
                                                                 or the global budget)
    raised HandlerError(retryable=False)  failed               failed (dead letter)
    raised anything else                  failed               retried with backoff, or failed

The loop (``worker.loop``) records a success with its next round trip and a
failure at once (``queue.fail``), whose retry decision is ``tasks.after_failure``.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentos.tasks import Outcome
from agentos.worker.handlers import BudgetSpent, HandlerError

TRACEBACK_CHARS = 20_000  # the end of a long traceback is kept in the attempt's error


@dataclass(frozen=True)
class End:
    """An attempt's end: succeeded with ``output``, or ``outcome`` with ``error``."""

    outcome: Outcome
    output: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    retryable: bool = True
    wait_s: float = 0.0  # deferred: seconds before the task may run again

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED


def returned(value: Any) -> End:
    """The handler returned ``value``."""
    return End(Outcome.SUCCEEDED, value if isinstance(value, dict) else {"result": value})


def raised(exc: BaseException, timeout_s: float, cancel_requested: bool) -> End | None:
    """The handler raised ``exc`` (or was stopped by it); None: the worker is stopping,
    and the task is handed back rather than ended."""
    for kind, end in _RAISED:
        if isinstance(exc, kind):
            return end(exc, timeout_s, cancel_requested)
    raise exc  # not a handler's failure (e.g. SystemExit): not the attempt's to record


def error_of(exc: BaseException) -> dict[str, Any]:
    """An exception as an attempt's error."""
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc))[-TRACEBACK_CHARS:],
            **(exc.fields if isinstance(exc, HandlerError) else {})}


def _timed_out(exc: BaseException, timeout_s: float, cancel_requested: bool) -> End:
    return End(Outcome.TIMEOUT, error={"type": "timeout",
                                       "message": f"no result within {timeout_s}s"})


def _cancelled(exc: BaseException, timeout_s: float, cancel_requested: bool) -> End | None:
    if not cancel_requested:
        return None  # the worker is stopping
    return End(Outcome.CANCELLED, error={"type": "cancelled",
                                         "message": "cancelled on request"})


def cancelled_before_start() -> End:
    """A claimed task whose cancel was requested while it waited for a free slot: it
    ends cancelled, its handler never ran."""
    return End(Outcome.CANCELLED, error={"type": "cancelled",
                                         "message": "cancelled on request before it started"},
               retryable=False)


def _budget_spent(exc: BaseException, timeout_s: float, cancel_requested: bool) -> End:
    assert isinstance(exc, BudgetSpent)
    return End(Outcome.DEFERRED, error={"type": "budget_exceeded", "message": str(exc),
                                        **exc.details}, wait_s=exc.wait_s)


def _failed(exc: BaseException, timeout_s: float, cancel_requested: bool) -> End:
    retryable = not (isinstance(exc, HandlerError) and not exc.retryable)
    return End(Outcome.FAILED, error=error_of(exc), retryable=retryable)


# the first rule whose class the exception is an instance of decides
_RAISED: tuple[tuple[type[BaseException],
                     Callable[[BaseException, float, bool], End | None]], ...] = (
    (TimeoutError, _timed_out),  # asyncio.timeout's, around the handler
    (asyncio.CancelledError, _cancelled),
    (BudgetSpent, _budget_spent),
    (Exception, _failed),
)
