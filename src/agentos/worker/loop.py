"""The worker: claims tasks straight from the database and runs their handlers.

One loop shape: start side tasks (the lease reaper and keeper; on PostgreSQL a
LISTEN on ``agentos_tasks``) → round trips while there is room, each one
transaction that records the results of the handlers that ended since the last
and claims as many tasks as there are free slots, plus a prefetch margin
(``claims.cycle``); woken at once by a handler ending, by submits here or, on
PostgreSQL, in any process, and by polling every ``poll_interval`` as the
fallback (scheduled retries fall due without a notification) → on stop, stop
claiming, hand back the claimed tasks that have not started, let running
handlers finish within ``grace``, record their results, then hand back what is
left. The prefetch margin is what the worker expects to start while its next
round trip is in flight (twice the tasks it ended per second times a round
trip's time, at most ``prefetch``): a claimed task waits in claim order for a
free slot and starts the moment one frees, so handlers keep running while the
next claim is on its way, and with quick handlers under load the claims grow
(fewer, larger round trips); with slow handlers the margin is 0 and a worker
claims only for its free slots, leaving the rest to other workers; what it claimed
ahead goes back unspent when no handler has ended for ``HOLD_S``. One lease
keeper renews every claimed attempt's lease (and its locks') in one statement
and carries cancellation requests; ``timeout_s`` cancels the handler. An agent's
declared ``resources`` are locked, all or none, before its handler starts
(``locks.attempts``). How a handler's end ends its attempt is the table in
``worker.outcomes``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from agentos import (
    agent_config,
    cache,
    claims,
    ids,
    locks,
    metrics,
    model_registry,
    queue,
    registry,
    task_logs,
    traces,
)
from agentos.aio import raise_if_cancelling, wait_wakeup
from agentos.config import Settings
from agentos.errors import Conflict, Forbidden, InvalidInput, NotFound
from agentos.locks import attempts
from agentos.store import Store
from agentos.tasks import DEFAULT_CONCURRENCY, DEFAULT_LEASE, Outcome, Task
from agentos.worker import handlers, instances, outcomes
from agentos.worker.handlers import Context

log = logging.getLogger("agentos.worker")

POLL_INTERVAL = 0.5  # seconds between claims when idle (a submit wakes us sooner)
PREFETCH = 8  # the most claimed ahead of free slots, by default: this many x concurrency
CLAIM_STEP = 16  # a claim of more than this many takes a multiple of it
HOLD_S = 1.0  # tasks claimed ahead go back when no handler has ended for this long
LINGER = 0.002  # seconds a result may wait for others ending to share its round trip


class _Unloadable(Exception):
    """An agent version's handler could not be loaded (import error, bad target)."""


@dataclass
class _Running:
    """A claimed task in its slot: the asyncio task running it, its context, and the
    lines its handler logged that no round trip has written yet."""

    task: Task
    runner: asyncio.Task[None]
    log: task_logs.AttemptLog
    ctx: Context | None = None


class Worker:
    """Runs tasks of ``agents`` (all when None) with up to ``concurrency`` at once."""

    def __init__(self, store: Store, *, worker_id: str | None = None,
                 agents: list[str] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 lease_s: float = DEFAULT_LEASE, grace: float = 30.0,
                 burst: bool = False, claim_batch: int | None = None,
                 poll_interval: float = POLL_INTERVAL,
                 log_limits: task_logs.Limits | None = None,
                 prefetch: int | None = None) -> None:
        self.store = store
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{ids.uuid7()[-6:]}"
        self.agents = agents
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.grace = grace
        self.burst = burst  # exit once the queue is empty (tests, batch jobs)
        self.claim_batch = claim_batch or concurrency
        # the most tasks claimed ahead of free slots (0: only for free slots)
        self.prefetch = max(0, min(PREFETCH * concurrency if prefetch is None else prefetch,
                            claims.MAX_CLAIM - self.claim_batch))
        self._margin = 0  # how many a claim takes beyond free slots now (_pace)
        self._paced_at = 0.0  # loop time of the last round trip's start
        self._paced_done = 0  # self.completed then
        self._last_end = 0.0  # loop time a handler last ended
        self.poll_interval = poll_interval
        # what an attempt keeps of its handler's ctx.log lines (AGENTOS_TASK_LOG_MAX_*)
        self.log_limits = log_limits or task_logs.Limits.from_settings(Settings())
        self._running: dict[str, _Running] = {}
        # claimed, waiting for a free slot, in claim order (prefetched): most urgent
        # first, then oldest
        self._waiting: dict[str, Task] = {}
        self._finished: list[claims.Finished] = []  # results the next round trip records
        self._wakeup = asyncio.Event()  # replaced by the store's in run()
        self._stopping = asyncio.Event()
        self._prepared: dict[tuple[str, str], asyncio.Future[
            tuple[dict[str, Any], handlers.Handler]]] = {}
        self.completed = 0
        self.trips = 0  # round trips (claims.cycle) made
        # agents whose handler this process cannot load, and why: their tasks are handed
        # back unspent and no longer claimed here (a worker that can load it runs them)
        self.unloadable: dict[str, str] = {}
        self._serving = agents  # what claims ask for: ``agents`` less the unloadable

    def stop(self) -> None:
        """Stop claiming; running tasks get ``grace`` seconds to finish."""
        self._stopping.set()
        self._wakeup.set()  # the loop sees it at once

    async def run(self) -> None:
        log.info("worker %s started (agents=%s, concurrency=%d)", self.id,
                 ",".join(self.agents or ["*"]), self.concurrency,
                 extra={"action": "worker_started"})
        await instances.register(self.store, self.id, self.agents, self.concurrency)
        # set by submits here or (PostgreSQL NOTIFY) anywhere, and by our own handlers
        # as they end
        self._wakeup = self.store.wakeup(queue.CHANNEL)
        side = [asyncio.create_task(queue.run_reaper(self.store, self._stopping),
                                    name="reaper"),
                asyncio.create_task(locks.run_sweeper(self.store, self._stopping),
                                    name="lock-sweeper"),
                # handlers' ctx.metrics samples, written in batches (no I/O when none)
                asyncio.create_task(metrics.run_flusher(self.store, self._stopping),
                                    name="metrics-flush"),
                asyncio.create_task(self._presence(), name="presence"),
                asyncio.create_task(self._keep_leases(), name="leases"),
                # other processes' submits and changes to what the cache holds (PostgreSQL
                # NOTIFY); on SQLite it only waits
                asyncio.create_task(self.store.listen([queue.CHANNEL, cache.CHANNEL]),
                                    name="listen")]
        try:
            while not self._stopping.is_set():
                if self._room() <= 0:
                    self._wakeup.clear()
                    await wait_wakeup(self._wakeup, self.poll_interval)
                    await self._give_back_held()
                    continue
                await self._linger()
                self._wakeup.clear()
                if not await self._cycle(self._room()):
                    if self.burst and not self._running and not self._waiting \
                            and not self._finished:
                        break
                    await wait_wakeup(self._wakeup, self.poll_interval)
            await self._drain()
        finally:
            self._stopping.set()  # the reaper and sweeper end at their next checkpoint
            for task in side[3:]:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            await metrics.flush_all(self.store)  # what handlers recorded while draining
            self.store.forget_wakeup(queue.CHANNEL, self._wakeup)
            await instances.stopped(self.store, self.id)
            log.info("worker %s stopped after %d tasks in %d round trips", self.id,
                     self.completed, self.trips, extra={"action": "worker_stopped"})

    def _room(self) -> int:
        """How many tasks the next claim may take: up to the slots and the prefetch
        margin, less those running and waiting (at most ``claim_batch`` + the margin)."""
        return min(self.concurrency + self._margin - len(self._running) - len(self._waiting),
                   self.claim_batch + self._margin)

    async def _cycle(self, room: int) -> bool:
        """One round trip: record the finished attempts, claim up to ``room`` more
        (beyond the free slots only tasks of agents without a concurrency limit).
        Returns whether anything happened."""
        finished, self._finished = self._finished, []
        slots = max(0, min(self.concurrency - len(self._running) - len(self._waiting),
                           self.claim_batch, room))
        if self._serving == []:  # every agent it serves is unloadable here: claim none
            room = slots = 0
        if room > CLAIM_STEP:  # a few claim sizes: PostgreSQL keeps one plan for each
            room = max(room // CLAIM_STEP * CLAIM_STEP, slots)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            done = await claims.cycle(self.store, self.id, finished, self._serving, slots,
                                      self.lease_s, prefetch=max(0, room - slots))
        except Exception:
            log.exception("claim failed", extra={"action": "claim_failed"})
            self._finished[:0] = finished  # recorded with the next round trip
            await wait_wakeup(self._stopping, self.poll_interval)
            return False
        self.trips += 1
        self._pace(began, loop.time() - began)
        for item in done.stale:  # a superseded attempt: its result no longer counts
            log.warning("task %s attempt %d finished after it was superseded", item.task_id,
                        item.attempt, extra={"action": "result_rejected"})
        if done.claimed:
            # claim order across round trips: a more urgent task claimed now starts
            # before less urgent ones an earlier round trip claimed ahead
            merged = sorted([*self._waiting.values(), *done.claimed],
                            key=lambda t: (-t.priority, t.seq))
            self._waiting = {t.id: t for t in merged}
        self._start()
        return bool(done.claimed or finished)

    def _pace(self, began: float, trip_s: float) -> None:
        """Set the prefetch margin after a round trip that began at ``began`` and took
        ``trip_s``: twice what the handlers ended per second since the round trip
        before it, times this one's time (what will start while the next is in
        flight), at most ``prefetch``. Slow handlers give 0."""
        if self._paced_at:
            rate = (self.completed - self._paced_done) / max(began - self._paced_at, 1e-6)
            self._margin = min(self.prefetch, int(2 * rate * trip_s))
        self._paced_at, self._paced_done = began, self.completed

    async def _give_back_held(self) -> None:
        """Hand back the tasks claimed ahead when no handler has ended for ``HOLD_S``
        (the handlers turned slow): another worker may have a free slot for them now.
        They go back unspent, keeping their place in claim order."""
        if not self._waiting or self._stopping.is_set() \
                or asyncio.get_running_loop().time() - self._last_end < HOLD_S:
            return
        self._margin = 0
        held, self._waiting = list(self._waiting.values()), {}
        log.info("handing back %d tasks claimed ahead: no handler ended for %.1fs",
                 len(held), HOLD_S, extra={"action": "prefetch_returned"})
        for task in held:
            try:
                await self._report(queue.hand_back(self.store, task.id, task.attempt))
            except Exception:  # its lease lapses and the reaper retries it (a lost attempt)
                log.exception("hand-back failed", extra={"action": "hand_back_failed"})

    def _start(self) -> None:
        """Start waiting tasks, in claim order, in the free slots."""
        while self._waiting and len(self._running) < self.concurrency \
                and not self._stopping.is_set():
            task = self._waiting.pop(next(iter(self._waiting)))
            self._running[task.id] = _Running(
                task, asyncio.create_task(self._execute(task)),
                task_logs.AttemptLog(task.id, task.attempt, self.log_limits))

    async def _linger(self) -> None:
        """Give handlers about to end a moment to do so, so one round trip records
        them all (a no-op handler ends within a turn or two of the event loop)."""
        if not self._finished or not self._running:
            return
        await asyncio.sleep(0)  # one turn: handlers that are ready end in it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER
        target = max(1, (self.claim_batch + self._margin) // 2)
        while self._running and len(self._finished) < target:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wakeup.clear()
            await wait_wakeup(self._wakeup, left)

    async def _keep_leases(self) -> None:
        """Renew the lease of every claimed attempt, in one statement, every third of
        a lease; a superseded attempt's handler is cancelled, and so is one whose
        task someone asked to cancel (one still waiting for a slot is dropped, or
        ended as cancelled without running)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            running = list(self._running.values())
            waiting = list(self._waiting.values())
            # the lines logged since, written with the heartbeat: a follower sees them
            taken = [(r, r.log.take()) for r in running]
            try:
                beaten = await claims.beat_many(self.store, [
                    *[(r.task.id, r.task.attempt, r.ctx is None or r.ctx.took_locks)
                      for r in running],
                    # not started: no lock taken yet
                    *[(task.id, task.attempt, False) for task in waiting]], self.lease_s,
                    [line for _, lines in taken for line in lines])
            except Exception:
                log.exception("heartbeat failed", extra={"action": "heartbeat_failed"})
                for r, lines in taken:
                    r.log.give_back(lines)  # written with the next one
                continue
            for task in waiting:
                if self._waiting.get(task.id) is not task:
                    continue  # started meanwhile: its runner is seen next time
                if task.id not in beaten:  # superseded: another attempt owns it now
                    del self._waiting[task.id]
                elif beaten[task.id]:  # asked to cancel before it started
                    del self._waiting[task.id]
                    end = outcomes.cancelled_before_start()
                    try:
                        await self._report(queue.fail(
                            self.store, task.id, task.attempt, end.error or {},
                            outcome=end.outcome, retryable=end.retryable,
                            release_locks=False))
                    except Exception:  # e.g. the database, for a moment: next time
                        log.exception("cancel failed", extra={"action": "cancel_failed"})
                        self._waiting[task.id] = task
            for r in running:
                if r.task.id not in beaten:
                    r.runner.cancel()  # superseded: another attempt owns the task now
                elif beaten[r.task.id] and r.ctx and not r.ctx.cancelled.is_set():
                    r.ctx.cancelled.set()
                    r.runner.cancel()
            raise_if_cancelling()  # a cancellation the driver absorbed mid-write

    async def _presence(self) -> None:
        """Tell the registry this worker is alive, and how busy, until it stops."""
        while True:
            # also where a cancellation psycopg absorbed mid-write is honoured
            await wait_wakeup(self._stopping, instances.HEARTBEAT_INTERVAL)
            if self._stopping.is_set():
                return
            try:
                await instances.beat(self.store, self.id, len(self._running))
                if self.unloadable and self.agents is None:
                    await self._narrow()  # agents created since are served too
            except Exception:
                log.exception("presence update failed", extra={"action": "presence_failed"})

    async def _narrow(self) -> None:
        """Claim only agents whose handler loads here: ``agents`` less the unloadable
        ones; for a worker of every agent, every agent there is now, less those."""
        every = self.agents if self.agents is not None else await registry.names(self.store)
        self._serving = [a for a in every if a not in self.unloadable]

    async def _cannot_load(self, task: Task, exc: BaseException) -> None:
        """Hand the task back at once without spending an attempt, stop claiming its
        agent and say why on this worker's record (``GET /api/v1/workers``)."""
        why = f"{type(exc).__name__}: {exc}"
        if task.agent not in self.unloadable:
            log.error("cannot load the handler of agent %s: %s; its tasks are left to "
                      "workers that can", task.agent, why, extra={"action": "handler_unloadable"})
            self.unloadable[task.agent] = why
            await self._narrow()
            await instances.unloadable(self.store, self.id, self.unloadable)
        await self._report(queue.hand_back(
            self.store, task.id, task.attempt, outcome=Outcome.LOST, error={
                "type": "handler_unloadable",
                "message": f"worker {self.id} cannot load the handler: {why}"}))

    async def _drain(self) -> None:
        waiting, self._waiting = list(self._waiting.values()), {}
        for claimed in waiting:  # claimed ahead and not started: back at once, unspent
            try:
                await self._report(queue.hand_back(self.store, claimed.id, claimed.attempt))
            except Exception:  # its lease lapses and the reaper retries it (a lost attempt)
                log.exception("hand-back failed", extra={"action": "hand_back_failed"})
        if self._running:
            log.info("finishing %d running tasks (grace %.0fs)", len(self._running),
                     self.grace, extra={"action": "worker_draining"})
            _, late = await asyncio.wait([r.runner for r in self._running.values()],
                                         timeout=self.grace)
            for task in late:
                task.cancel()  # _execute hands the task back
            await asyncio.gather(*late, return_exceptions=True)
        if self._finished:
            await self._cycle(0)

    # ---------------------------------------------------------------- one task

    async def _prepare(self, agent: str, version: str) -> tuple[dict[str, Any], handlers.Handler]:
        """The version's definition and handler: read once, however many of its tasks
        start at once (published versions never change: cached for good)."""
        key = (agent, version)
        ready = self._prepared.get(key)
        if ready is not None and ready.done() and not ready.cancelled() and not ready.exception():
            return ready.result()  # the usual case: no waiting, no shield
        if key not in self._prepared:
            self._prepared[key] = asyncio.ensure_future(self._load(agent, version))
        try:
            return await asyncio.shield(self._prepared[key])
        except Exception:
            self._prepared.pop(key, None)  # the next task tries again
            raise

    async def _load(self, agent: str, version: str) -> tuple[dict[str, Any], handlers.Handler]:
        definition = (await registry.get(self.store, agent, version)).definition
        try:
            return definition, handlers.load(definition)
        except Exception as exc:
            raise _Unloadable(exc) from exc

    async def _execute(self, task: Task) -> None:
        started = time.monotonic()
        try:
            await self._attempt(task)
        except asyncio.CancelledError:
            running = self._running.get(task.id)
            await self._report(queue.hand_back(self.store, task.id, task.attempt,
                                               running.log.take() if running else ()))
        finally:
            self._running.pop(task.id, None)
            self._start()  # a waiting task takes the slot at once
            self._wakeup.set()  # a free slot, and maybe a result to record
            self.completed += 1
            self._last_end = asyncio.get_running_loop().time()
            log.debug("task %s attempt %d took %.1fms", task.id, task.attempt,
                      (time.monotonic() - started) * 1000, extra={"action": "task_done"})

    async def _attempt(self, task: Task) -> None:
        if task.agent in self.unloadable:  # claimed before the claims left it out
            await self._cannot_load(task, _Unloadable(self.unloadable[task.agent]))
            return
        try:
            definition, handler = await self._prepare(task.agent, task.agent_version)
        except _Unloadable as exc:  # not here: another worker may load it (PYTHONPATH)
            await self._cannot_load(task, exc.__cause__ or exc)
            return
        except Exception as exc:  # e.g. the database, for a moment: retried
            await self._report(queue.fail(self.store, task.id, task.attempt,
                                          outcomes.error_of(exc)))
            return
        model = None
        if ref := definition.get("model_ref"):
            try:  # from the process's cache: no round trip unless a deploy changed it
                model = await model_registry.resolve(self.store, ref)
            except (NotFound, Conflict) as exc:  # no such model, none deployed, archived
                await self._report(queue.fail(self.store, task.id, task.attempt,
                                              outcomes.error_of(exc), retryable=False))
                return
            except Exception as exc:
                await self._report(queue.fail(self.store, task.id, task.attempt,
                                              outcomes.error_of(exc)))
                return
        try:  # the agent's live config (from the process's cache: no round trip)
            overrides = await agent_config.overrides(self.store, task.agent) \
                if definition.get("config") else {}
        except Exception as exc:
            await self._report(queue.fail(self.store, task.id, task.attempt,
                                          outcomes.error_of(exc)))
            return
        try:
            held = await attempts.take(self.store, task, definition, self.lease_s)
        except (InvalidInput, Forbidden) as exc:  # bad input or not permitted: never retried
            await attempts.refuse(self.store, task, exc)
            return
        except Exception as exc:
            await self._report(queue.fail(self.store, task.id, task.attempt,
                                          outcomes.error_of(exc)))
            return
        if held is None:
            return  # handed back to wait in the lock queue
        current = asyncio.current_task()
        assert current is not None
        running = self._running.get(task.id)
        lines = running.log if running else task_logs.AttemptLog(task.id, task.attempt,
                                                                 self.log_limits)
        ctx = Context(claimed=task, agent=definition, store=self.store,
                      heartbeat=lambda: self._beat(task.id, task.attempt, ctx, current),
                      log=task_logs.TaskLogger(log, {"task_id": task.id}, lines),
                      lease_s=self.lease_s, held=held, took_locks=bool(held), model=model,
                      config_overrides=overrides)
        if running is not None:
            running.ctx = ctx  # the lease keeper now knows whether it took locks
        try:
            with traces.span("task.attempt", _span_of(task)):
                async with asyncio.timeout(task.timeout_s):
                    end = outcomes.returned(await handler(ctx, task.input))
        except (Exception, asyncio.CancelledError) as exc:
            stopped = outcomes.raised(exc, task.timeout_s, ctx.cancelled.is_set())
            if stopped is None:
                raise  # the worker is shutting down: hand the task back
            end = stopped
        if end.outcome is Outcome.DEFERRED:  # held back by a budget: no retry spent
            await self._report(queue.hand_back(
                self.store, task.id, task.attempt, lines.take(), outcome=end.outcome,
                error=end.error, delay_s=end.wait_s, **_used(ctx)))
            return
        if end.succeeded:  # recorded by the loop's next round trip, with others ending meanwhile
            self._finished.append(claims.Finished(task.id, task.attempt, end.output, **_used(ctx),
                                                  took_locks=ctx.took_locks,
                                                  logs=tuple(lines.take())))
            return
        await self._report(queue.fail(self.store, task.id, task.attempt, end.error or {},
                                      outcome=end.outcome, retryable=end.retryable,
                                      **_used(ctx), release_locks=ctx.took_locks,
                                      logs=lines.take()))

    async def _beat(self, task_id: str, attempt: int, ctx: Context,
                    runner: asyncio.Task[Any]) -> None:
        try:
            beat = await claims.heartbeat(self.store, task_id, attempt, self.lease_s)
        except Conflict:
            runner.cancel()  # superseded: another attempt owns the task now
            return
        except Exception:
            log.exception("heartbeat failed", extra={"action": "heartbeat_failed"})
            return
        if beat.cancel_requested and not ctx.cancelled.is_set():
            ctx.cancelled.set()
            runner.cancel()

    async def _report(self, call: Any) -> None:
        try:
            await call
        except Conflict as exc:  # a superseded attempt: its result no longer counts
            log.warning("%s", exc.message, extra={"action": "result_rejected"})


def _span_of(task: Any) -> dict[str, Any] | None:
    """A task attempt's span attributes (none built while tracing is off)."""
    if not traces.enabled():
        return None
    return {"agentos.task_id": task.id, "agentos.agent": task.agent,
            "agentos.agent_version": task.agent_version, "agentos.attempt": task.attempt,
            "agentos.correlation_id": task.correlation_id}


def _used(ctx: Context) -> dict[str, Any]:
    """The LLM tokens and cost the attempt reported, for its execution record."""
    return {"tokens": ctx.usage.tokens, "cost": ctx.usage.cost}
