"""The server process: the HTTP app (``api.app``) and the background loops its
settings ask for, started and stopped with it.

    router        routes new events to agents' triggers (AGENTOS_RUN_ROUTER)
    scheduler     fires due schedule ticks (AGENTOS_RUN_SCHEDULER)
    reaper        ends attempts whose lease lapsed, keeps the queue's statistics
    lock-sweeper  reclaims lapsed lock leases, grants their next waiters
    task-log-retention  deletes ended tasks' log lines past their age
                  (AGENTOS_TASK_LOG_RETENTION_DAYS; 0: none)
    worker        runs tasks in this process (AGENTOS_RUN_WORKER; the demo's)
    projection:N  keeps read model N up to date (AGENTOS_RUN_PROJECTIONS)
    workflows     moves workflow runs on from the log; ends lapsed approvals and waits
                  (AGENTOS_RUN_WORKFLOWS)
    metrics       folds the log into the automatic metrics, samples the queue's depth,
                  applies the rollups' retention (AGENTOS_RUN_METRICS)
    metrics-flush writes this process's buffered samples every few seconds

Each loop is supervised: one that dies is logged and started again. ``agentos
serve`` runs ``create(settings)``; uvicorn can run ``agentos.server:from_env``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentos import locks, metrics, projections, queue, router, schedules, task_logs
from agentos.api.app import create_app
from agentos.config import Settings
from agentos.metrics import automatic, query
from agentos.store import Store
from agentos.worker.loop import Worker
from agentos.workflows import engine as workflow_engine

log = logging.getLogger("agentos.server")
STOP_GRACE = 5.0  # seconds background loops get to stop on their own at shutdown
RESTART_DELAY = 1.0  # seconds before a loop that died starts again


def create(settings: Settings | None = None, store: Store | None = None,
           own_process: bool = False) -> FastAPI:
    """The server's app: the HTTP API, with the background loops running while it
    is up. It opens (and closes) its own store unless one is given. ``own_process``:
    the app is its process's one app (``agentos serve``, uvicorn's factory), and what
    its start-up made is frozen out of the garbage collector's sight once it is up."""
    settings = settings or Settings()
    return create_app(settings, store,
                      background=lambda s: background(s, settings, freeze=own_process))


def from_env() -> FastAPI:
    """The server configured from the environment
    (``uvicorn --factory agentos.server:from_env``)."""
    return create(Settings(), own_process=True)


@asynccontextmanager
async def background(store: Store, settings: Settings, freeze: bool = False
                     ) -> AsyncIterator[None]:
    """Run the loops ``settings`` ask for until the block ends; then they stop at
    their next checkpoint, between transactions, and the stragglers (a handler still
    running) are cancelled after ``STOP_GRACE``. ``freeze``: ``gc.freeze()`` once they
    are started: modules, routes, schemas and the store live as long as the process,
    and a full collection no longer walks them (a batch of 1,000 events over HTTP:
    about a fifth less of the server's CPU)."""
    stop = asyncio.Event()
    in_server_worker = Worker(store, concurrency=settings.worker_concurrency,
                              log_limits=task_logs.Limits.from_settings(settings))
    loops = []
    if settings.run_router:
        loops.append(_supervised("router", lambda: router.run(store, stop)))
    if settings.run_scheduler:
        loops.append(_supervised("scheduler", lambda: schedules.run(store, stop)))
    loops.append(_supervised("reaper", lambda: queue.run_reaper(store, stop)))
    loops.append(_supervised("lock-sweeper", lambda: locks.run_sweeper(store, stop)))
    if settings.task_log_retention_days:
        days = settings.task_log_retention_days
        loops.append(_supervised("task-log-retention",
                                 lambda: task_logs.run_retention(store, stop, days)))
    if settings.run_worker:
        loops.append(_supervised("worker", in_server_worker.run))
    loops.append(_supervised("metrics-flush", lambda: metrics.run_flusher(store, stop)))
    if settings.run_metrics:
        retention = query.Retention.from_settings(settings)
        loops.append(_supervised("metrics", lambda: automatic.run(store, stop, retention)))
    if settings.run_projections:
        for projection in projections.load(settings.projections).values():
            loops.append(_supervised(f"projection:{projection.name}",
                                     functools.partial(projections.run, store, projection,
                                                       stop)))
    if settings.run_workflows:
        loops.append(_supervised("workflows", lambda: workflow_engine.run(store, stop)))
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        stop.set()
        in_server_worker.stop()
        _, late = await asyncio.wait(loops, timeout=STOP_GRACE)
        for loop in late:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


def _supervised(name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Run a background loop; if it dies, log it and start it again. A loop that
    returns (it was asked to stop) ends the task."""

    async def keep_running() -> None:
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s loop died; restarting", name, extra={"action": "loop_died"})
                await asyncio.sleep(RESTART_DELAY)

    return asyncio.create_task(keep_running(), name=name)
