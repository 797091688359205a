"""``python`` handlers: an importable ``module:callable``, async or sync.

A sync callable runs in a thread of its own and gets a ``ThreadContext``: the
same ``task``, ``agent``, ``config``, ``usage`` and ``log``; ``emit``, ``call``
and ``heartbeat`` are plain calls that run on the worker's event loop and
block the thread until they are done; ``cancelled`` is a ``threading.Event``.

A thread cannot be stopped from outside. When its attempt times out, is
cancelled or the worker shuts down, ``ctx.cancelled`` is set and a pending
``emit``/``call``/``heartbeat`` raises ``concurrent.futures.CancelledError``;
the worker keeps heartbeating the task's lease and keeps its slot until the
thread returns, and only then records the timeout or cancellation (or hands
the task back). So a task never runs twice at once and a worker never runs
more than ``--concurrency`` handlers, but a sync handler that ignores
``ctx.cancelled`` holds its slot, and a stopping worker, until it returns
(SIGKILL abandons it: the lease lapses and the task is retried). Long sync
handlers should check the flag; ``ctx.cancelled.wait(seconds)`` is a sleep
that ends early on cancellation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from agentos import agent_spec, events, metrics
from agentos.worker.handlers.context import Context, Handler


def make(spec: agent_spec.PythonHandler) -> Handler:
    """Import the target; a sync callable is wrapped to run in its own thread."""
    module_name, _, attr = spec.target.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if inspect.iscoroutinefunction(target):
        return target  # type: ignore[no-any-return]

    async def in_thread(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await run_in_thread(target, ctx, data)
        return result

    return in_thread


class ThreadContext:
    """The handler context as a sync handler sees it, from its own thread."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._guard = threading.Lock()
        self.task = ctx.task
        self.agent = ctx.agent
        self.model = ctx.model
        self.usage = ctx.usage
        self.log = ctx.log
        self.cancelled = threading.Event()

    @property
    def config(self) -> dict[str, Any]:
        """The agent's typed config values."""
        return self._ctx.config

    def emit(self, type: str, payload: dict[str, Any] | None = None,
             priority: events.PriorityName = "normal", *,
             dedup_key: str | None = None) -> events.Event:
        """``Context.emit``, blocking until the event is appended (once across retries)."""
        event: events.Event = self._run(self._ctx.emit(type, payload, priority,
                                                       dedup_key=dedup_key))
        return event

    def call(self, agent: str, input: dict[str, Any] | None = None, *,
             timeout_s: float | None = None) -> dict[str, Any]:
        """``Context.call``, blocking until the sub-task ends."""
        output: dict[str, Any] = self._run(self._ctx.call(agent, input, timeout_s=timeout_s))
        return output

    def approval(self, title: str, details: dict[str, Any] | None = None,
                 role: str = "operator", *, timeout_s: float | None = None,
                 on_timeout: str = "reject") -> dict[str, Any]:
        """``Context.approval``, blocking until the decision."""
        said: dict[str, Any] = self._run(self._ctx.approval(
            title, details, role, timeout_s=timeout_s, on_timeout=on_timeout))
        return said

    def artifact(self, name: str, data: Any) -> dict[str, Any]:
        """``Context.artifact``, blocking until it is stored."""
        stored: dict[str, Any] = self._run(self._ctx.artifact(name, data))
        return stored

    def heartbeat(self) -> None:
        """Extend the lease now (the worker also does it on its own)."""
        self._run(self._ctx.heartbeat())

    @property
    def metrics(self) -> ThreadMetrics:
        """``Context.metrics``, recorded on the worker's event loop."""
        return ThreadMetrics(self)

    @property
    def knowledge(self) -> ThreadKnowledge:
        """``Context.knowledge`` with blocking calls."""
        return ThreadKnowledge(self)

    def _run(self, step: Awaitable[Any]) -> Any:
        async def on_loop() -> Any:
            return await step

        future = asyncio.run_coroutine_threadsafe(on_loop(), self._loop)
        with self._guard:
            self._pending.add(future)
        try:
            return future.result()
        finally:
            with self._guard:
                self._pending.discard(future)

    def cancel(self) -> None:
        """Ask the handler to stop (on the loop): set the flag, cancel pending calls."""
        self.cancelled.set()
        with self._guard:
            for future in self._pending:
                future.cancel()


class ThreadMetrics:
    """Metrics from a sync handler's thread: handed to the event loop, never blocking."""

    def __init__(self, ctx: ThreadContext) -> None:
        self._ctx = ctx

    def _later(self, kind: str, name: str, value: float, tags: dict[str, Any] | None) -> None:
        metrics.validate_name(name)  # a bad name fails the call here, in the handler
        metrics.validate_tags(tags or {})
        recorder = self._ctx._ctx.metrics
        self._ctx._loop.call_soon_threadsafe(getattr(recorder, kind), name, value, tags)

    def count(self, name: str, value: float = 1.0, tags: dict[str, Any] | None = None) -> None:
        self._later("count", name, value, tags)

    def gauge(self, name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        self._later("gauge", name, value, tags)

    def observe(self, name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        self._later("observe", name, value, tags)


class ThreadKnowledge:
    """The knowledge base from a sync handler's thread: each call blocks until done."""

    def __init__(self, ctx: ThreadContext) -> None:
        self._ctx = ctx

    def put(self, namespace: str, key: str, content: str, **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = self._ctx._run(
            self._ctx._ctx.knowledge.put(namespace, key, content, **fields))
        return doc

    def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self._ctx._run(self._ctx._ctx.knowledge.get(namespace, key))
        return doc

    def search(self, q: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._ctx._run(
            self._ctx._ctx.knowledge.search(q, **filters))
        return found

    def delete(self, namespace: str, key: str) -> bool:
        gone: bool = self._ctx._run(self._ctx._ctx.knowledge.delete(namespace, key))
        return gone


async def run_in_thread(target: Callable[[ThreadContext, dict[str, Any]], Any], ctx: Context,
                        data: dict[str, Any]) -> Any:
    """Run ``target`` in a new thread; if cancelled meanwhile, ask it to stop, wait
    for it to return all the same, then raise ``CancelledError``."""
    loop = asyncio.get_running_loop()
    thread_ctx = ThreadContext(ctx, loop)
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def body() -> None:
        result, error = None, None
        try:
            result = target(thread_ctx, data)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit and the like fail the attempt only
            error = RuntimeError(f"the handler raised {exc!r}")
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    # a daemon thread: a worker that is killed or abandons it does not wait for it
    threading.Thread(target=body, name=f"task-{ctx.task['id']}", daemon=True).start()
    cancelled = False
    while not done.done():
        try:
            await asyncio.wait([done])  # cancelling this wait leaves ``done`` alone
        except asyncio.CancelledError:
            cancelled = True
            thread_ctx.cancel()
    if cancelled:
        if not done.cancelled() and done.exception() is not None:
            ctx.log.debug("handler thread ended after its cancellation: %r",
                          done.exception(), extra={"action": "thread_ended_late"})
        raise asyncio.CancelledError
    return done.result()
