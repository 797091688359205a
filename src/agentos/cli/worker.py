"""``agentos worker``: run handlers for some or all agents, straight on the database."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import Annotated

import typer

from agentos.cli import db, options
from agentos.cli.serve import configure_logging
from agentos.config import Settings
from agentos.tasks import DEFAULT_CONCURRENCY


def worker(
    agents: Annotated[str | None, typer.Option(
        help="Comma-separated agent names to serve (default: all).")] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, max=10_000, help="Tasks run at once (each round trip to the database "
        "claims for every free slot).")] = DEFAULT_CONCURRENCY,
    worker_id: Annotated[str | None, typer.Option(
        "--id", help="This worker's name (default: host-pid-random).")] = None,
    grace: Annotated[float, typer.Option(
        min=0, help="Seconds running tasks get to finish after SIGTERM; the rest are "
        "handed back (a sync handler's once its thread returns).")] = 30.0,
    lease: Annotated[float, typer.Option(
        min=1, help="Seconds a claim lasts without a heartbeat.")] = 30.0,
    burst: Annotated[bool, typer.Option(
        help="Exit once no task is ready (for batch jobs and tests).")] = False,
    poll: Annotated[float, typer.Option(
        min=0.05, help="Seconds between claims while idle; a submit wakes the worker "
        "sooner (from any process on PostgreSQL).")] = 0.5,
    prefetch: Annotated[int | None, typer.Option(
        min=0, max=1000, help="Most tasks claimed ahead of free slots, to start the "
        "moment one frees (default 8 x concurrency). The worker claims ahead only what "
        "it expects to start during its next round trip (none while handlers are slow); "
        "0: claim only for free slots.")] = None,
) -> None:
    """Claim tasks from AGENTOS_DATABASE_URL and run their handlers.

    Python handler targets are imported from PYTHONPATH (and the current
    directory). On SIGTERM or Ctrl+C the worker stops claiming, lets running
    tasks finish within --grace, then hands the rest back to the queue.
    """
    settings = options.settings()
    configure_logging(settings)
    db.ensure_current(settings)
    if "" not in sys.path:
        sys.path.insert(0, "")  # handlers in the working directory, as `python -m` would
    names = [a.strip() for a in agents.split(",") if a.strip()] if agents else None
    serves = f"agents {', '.join(names)}" if names else "every agent"
    typer.echo(f"worker on {db.redact(settings.database_url)}: {serves}, {concurrency} "
               "tasks at once")
    asyncio.run(_run(settings, names, concurrency, worker_id, grace, lease, burst, poll,
                     prefetch))


async def _run(settings: Settings, agents: list[str] | None, concurrency: int,
               worker_id: str | None, grace: float, lease: float, burst: bool,
               poll: float, prefetch: int | None = None) -> None:
    from agentos import cache, task_logs, traces
    from agentos.store import open_store
    from agentos.worker.loop import Worker

    # handlers share the pool (ctx.emit, ctx.call); more connections than this only
    # queue in PostgreSQL instead of here
    store = open_store(settings.database_url, pool_size=min(max(4, concurrency + 2), 16))
    await cache.start(store, settings)
    traces.setup(settings.otlp_endpoint, "agentos-worker")
    runner = Worker(store, worker_id=worker_id, agents=agents, concurrency=concurrency,
                    lease_s=lease, grace=grace, burst=burst, poll_interval=poll,
                    log_limits=task_logs.Limits.from_settings(settings), prefetch=prefetch)
    # what startup made (modules, the registry's definitions) lives as long as the worker:
    # keep the collector from walking it again on every full collection
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    try:
        await runner.run()
    finally:
        traces.shutdown()  # what is batched is exported first
        await cache.stop(store)
        await store.close()
