"""Claims: the queue's hot path — take ready tasks, keep their leases, record results.

A worker's round trip is one ``cycle``: a single write transaction that ends
the attempts it finished since the last one (``complete``, fenced per task:
only the task's running attempt counts) and claims as many tasks as it has
free slots; the ``task.succeeded``/``task.started`` events of the whole batch
are one append. Leases are kept the same way: one statement renews every
running attempt a worker holds (``beat_many``). A remote worker claims over
HTTP with ``claim_remote``, which long-polls, locks what each task declares and
resolves its agent's ``model_ref``, as the in-process worker does before a handler runs.

The statements, and the rules both backends' statements keep (fencing, claim
order, concurrency limits), are the store's (``store.tasks``): on PostgreSQL a
round trip is one statement, on SQLite the same statements in one write
transaction on its own connection. This module is the protocol around them: when
a round trip may take that one step (no ended attempt may hold a lock), and how
a claim that a capped agent stopped is finished (``_choose``): agent by agent,
each counted under its claim lock, so no two claims can both take an agent's
last slot and a capped agent's backlog never hides other agents' tasks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, locks, model_registry, queue, registry, task_logs, tasks
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Draft, EventIn
from agentos.locks import attempts
from agentos.store import Store
from agentos.store import task_logs as store_logs
from agentos.store.tasks import CHANNEL, task_event
from agentos.tasks import Task
from agentos.worker import instances

MAX_CLAIM = 1000
REMOTE_POLL = 0.5  # seconds between looks of a long-polling remote claim (a local submit
# wakes it sooner; other processes' submits are seen by polling)


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt whose handler returned: to be recorded as succeeded."""

    task_id: str
    attempt: int
    output: dict[str, Any]
    tokens: Any = None
    cost: float | None = None
    # False: the attempt took no lock; None: not known (a remote worker's), the one-step
    # round trip looks (Cycled.held); True: it may hold some (ended where they are given back)
    took_locks: bool | None = True
    logs: tuple[task_logs.Line, ...] = ()  # its lines not written yet (ctx.log)


@dataclass
class Cycle:
    claimed: list[Task] = field(default_factory=list)
    stale: list[Finished] = field(default_factory=list)  # superseded: not recorded


def _by_claim_order(claimed: list[Task]) -> list[Task]:
    claimed.sort(key=lambda task: (-task.priority, task.seq))
    return claimed


async def cycle(store: Store, worker_id: str, finished: list[Finished],
                agents: list[str] | None = None, limit: int = 0,
                lease_s: float = tasks.DEFAULT_LEASE, prefetch: int = 0) -> Cycle:
    """Record ``finished`` and claim up to ``limit`` tasks, in one transaction
    (on PostgreSQL one statement, when no finished attempt holds a lock: those whose
    ``took_locks`` is None are looked at by that statement, which does nothing when one
    does; then all end here, where locks are given back).

    ``prefetch``: up to this many more, taken only by that one step, so only of agents
    without a concurrency limit (a worker's tasks waiting for a free slot must not
    count against an agent's limit while other workers could run them)."""
    if not 0 <= limit <= MAX_CLAIM or not 0 <= prefetch <= MAX_CLAIM - limit:
        raise InvalidInput(f"limit must be between 0 and {MAX_CLAIM}", code="bad_limit")
    logs = [line for f in finished for line in f.logs]
    if not any(f.took_locks for f in finished):
        owners = [locks.task_owner(f.task_id) for f in finished if f.took_locks is None]
        one_step = await store.tasks.cycle(worker_id, finished, agents, limit + prefetch,
                                           lease_s, logs, owners)
        # held: nothing done; all end below, where the locks of those not known to
        # hold none are given back
        if one_step is not None and not one_step.held:
            claimed = [Task.from_row(r) for r in one_step.claimed]
            if one_step.short and len(claimed) < limit:
                # a capped agent's task met, or scheduled ones promoted
                claimed += await _claim_rest(store, worker_id, agents, limit - len(claimed),
                                             lease_s)
            return Cycle(_by_claim_order(claimed), cast(list[Finished], one_step.stale))
    out = Cycle()
    async with store.write() as conn:
        drafts: list[EventIn | Draft] = []
        await store_logs.insert_in(conn, logs)
        if finished:
            done, stale = await store.tasks.complete_in(conn, finished)
            out.stale = cast(list[Finished], stale)
            drafts += await _release(store, conn, done, finished)
            drafts += [task_event(r, "succeeded", attempt=r.attempt) for r in done]
        if limit:
            claimed = await _claim_in(store, conn, worker_id, agents, limit, lease_s)
            drafts += [task_event(r, "started", attempt=r.attempt, worker_id=worker_id)
                       for r in claimed]
            out.claimed = [Task.from_row(r) for r in claimed]
        if drafts:
            await events.append_in(store, conn, drafts)
        else:
            store.nothing_changed(conn)  # an empty poll is not worth an audit row
    return out


async def _claim_rest(store: Store, worker_id: str, agents: list[str] | None, limit: int,
                      lease_s: float) -> list[Task]:
    """The rest of a claim that a one-step round trip left short (a capped agent's
    task, or scheduled tasks it promoted), in a transaction of its own."""
    async with store.write() as conn:
        more = await _claim_in(store, conn, worker_id, agents, limit, lease_s)
        if more:
            await events.append_in(store, conn, [task_event(
                r, "started", attempt=r.attempt, worker_id=worker_id) for r in more])
        else:
            store.nothing_changed(conn)
    return [Task.from_row(r) for r in more]


async def claim(store: Store, worker_id: str, agents: list[str] | None = None,
                limit: int = 1, lease_s: float = tasks.DEFAULT_LEASE) -> list[Task]:
    """Claim up to ``limit`` ready tasks, most urgent first, then oldest."""
    if not 1 <= limit <= MAX_CLAIM:
        raise InvalidInput(f"limit must be between 1 and {MAX_CLAIM}", code="bad_limit")
    return (await cycle(store, worker_id, [], agents, limit, lease_s)).claimed


async def complete(store: Store, task_id: str, attempt: int, output: dict[str, Any] | None,
                   tokens: Any = None, cost: float | None = None,
                   release_locks: bool = True, logs: task_logs.Logs = ()) -> Task:
    """End the attempt as succeeded, with its last ``logs``; 409 if it is not the task's
    running attempt. In one round trip when it writes no lines and holds no lock (nor
    waits for one); else in a write transaction that gives its locks back."""
    item = Finished(task_id, attempt, output or {}, tokens, cost, release_locks)
    if not task_logs.any_lines(logs):  # the lines of a remote worker are counted first
        one = await store.tasks.complete(
            item, locks.task_owner(task_id) if release_locks else None)
        if one is not None and not one.held:
            if one.row is None:
                async with store.read() as conn:
                    await store.tasks.refuse(conn, task_id, attempt, "complete")
            return Task.from_row(one.row)
    async with store.write() as conn:
        done, _ = await store.tasks.complete_in(conn, [item], full=True)
        if not done:
            await store.tasks.refuse(conn, task_id, attempt, "complete")
        await task_logs.write_in(conn, task_id, attempt, logs)
        drafts = await _release(store, conn, done, [item])
        await events.append_in(store, conn, [*drafts,
                                             task_event(done[0], "succeeded", attempt=attempt)])
    return Task.from_row(done[0])


async def heartbeat(store: Store, task_id: str, attempt: int,
                    lease_s: float = tasks.DEFAULT_LEASE, logs: task_logs.Logs = ()) -> Task:
    """Extend the lease (and the attempt's locks') and write the attempt's ``logs``
    since the last; the answer says whether cancellation was requested. 409 if the
    attempt is not the running one."""
    async with store.write() as conn:
        if not await _beat_in(store, conn, [(task_id, attempt, True)], lease_s):
            await store.tasks.refuse(conn, task_id, attempt, "heartbeat")
        await task_logs.write_in(conn, task_id, attempt, logs)
        row = await store.tasks.get(conn, task_id)
    return Task.from_row(row)


async def beat_many(store: Store, running: list[tuple[str, int, bool]],
                    lease_s: float = tasks.DEFAULT_LEASE,
                    logs: Sequence[task_logs.Line] = ()) -> dict[str, bool]:
    """Extend the leases of ``running`` (task id, attempt, took locks) in one statement,
    and write the lines they logged since (one more, when there are some).

    Returns task id -> cancellation requested, for the attempts still current; one
    missing was superseded (its lease lapsed and the task moved on).
    """
    if not running:
        return {}
    async with store.write() as conn:
        await store_logs.insert_in(conn, logs)
        beaten = await _beat_in(store, conn, running, lease_s)
        store.nothing_changed(conn)
    return beaten


async def _release(store: Store, conn: AsyncConnection, done: Sequence[Any],
                   finished: list[Finished]) -> list[EventIn]:
    """Give back the locks of the ended attempts that may hold some."""
    may_hold = {f.task_id for f in finished if f.took_locks is not False}
    ended = [row for row in done if row.id in may_hold]
    if not ended:
        return []
    return await locks.release_owner_in(store, conn, [locks.task_owner(row.id) for row in ended],
                                        max(row.finished_at for row in ended))


async def _beat_in(store: Store, conn: AsyncConnection, running: list[tuple[str, int, bool]],
                   lease_s: float) -> dict[str, bool]:
    beaten, now = await store.tasks.beat_in(conn, [(i, n) for i, n, _ in running], lease_s,
                                            with_now=any(held for _, _, held in running))
    for task_id, _, held in running:
        if held and task_id in beaten:
            assert now is not None
            await locks.renew_owner_in(store, conn, locks.task_owner(task_id), lease_s, now)
    return beaten


# ------------------------------------------------------------------- claim


async def _claim_in(store: Store, conn: AsyncConnection, worker_id: str,
                    agents: list[str] | None, limit: int, lease_s: float) -> list[Any]:
    """Claim up to ``limit`` tasks within the caller's write transaction."""
    claimed, capped = await store.tasks.claim_in(conn, worker_id, agents, limit, lease_s)
    if capped and len(claimed) < limit:
        chosen = await _choose(store, conn, agents, limit - len(claimed))
        if chosen:
            claimed += await store.tasks.take(conn, [r.id for r in chosen], worker_id, lease_s)
    claimed.sort(key=lambda r: (-r.priority, r.seq))
    return claimed


async def _choose(store: Store, conn: AsyncConnection, agents: list[str] | None,
                  limit: int) -> list[Any]:
    """Up to ``limit`` ready tasks in claim order, within each agent's concurrency limit.

    Agents already at their limit are left out by the read. The first read usually
    suffices; when an agent fills up during this claim, its other rows are
    skipped and the next read leaves it out, so a capped agent's backlog never
    hides other agents' tasks (each further read rules out one more agent).
    """
    chosen: list[Any] = []
    room: dict[str, int] = {}  # capped agents seen so far: slots left in this claim
    limits: dict[tuple[str, str], Any] = {}
    first = True
    while True:
        want = (limit - len(chosen)) * 2  # over-fetch: some may be held back by limits
        rows = await store.tasks.ready(conn, agents,
                                       [agent for agent, left in room.items() if left == 0],
                                       [r.id for r in chosen], want)
        if unknown := [r for r in rows if (r.agent, r.agent_version) not in limits]:
            limits.update(await store.tasks.limits_of(conn, unknown))
        caps: dict[str, int] = {}
        for r in rows:
            cap = limits.get((r.agent, r.agent_version), {}).get("concurrency")
            if cap and r.agent not in room:
                caps[r.agent] = max(cap, caps.get(r.agent, 0))
        for agent in sorted(caps):  # sorted: two claimers lock agents in the same order
            # a later read may only try: waiting out of order could deadlock
            if not await store.tasks.lock_agent(conn, agent, wait=first):
                room[agent] = 0
                continue
            room[agent] = max(caps[agent] - await store.tasks.running(conn, agent), 0)
        for row in rows:
            if row.agent in room:
                if room[row.agent] == 0:
                    continue
                room[row.agent] -= 1
            chosen.append(row)
            if len(chosen) == limit:
                return chosen
        if len(rows) < want:  # nothing more is ready
            return chosen
        first = False


# ------------------------------------------------------------- remote claim


async def claim_remote(store: Store, worker_id: str, host: str, agents: list[str] | None,
                       limit: int, lease_s: float, wait_s: float, completed: list[Finished],
                       recheck: Callable[[], Awaitable[object]] | None = None,
                       recheck_s: float = 5.0
                       ) -> tuple[list[Claimed], list[Finished]]:
    """A remote worker's round trip over HTTP: record ``completed`` and claim up to
    ``limit`` tasks in one transaction; with ``wait_s`` > 0, long-poll until one is
    ready. Each task comes with its agent's declared resources locked for its attempt
    (one that must wait for a lock is handed back to the lock's queue instead) and the
    model its agent's ``model_ref`` names now (``with_models``). The
    worker is registered, or refreshed with what it runs now, when the request ends and
    when a long poll starts to wait (``instances.seen``: at most once a
    ``PRESENCE_EVERY`` unless that changed); a long poll calls ``recheck`` (the caller's credential
    check, which raises once it was revoked) every ``recheck_s`` seconds. Returns the
    tasks and the stale completions."""
    # whether each attempt holds locks is looked at by the round trip itself
    finished = [Finished(c.task_id, c.attempt, c.output, c.tokens, c.cost, took_locks=None)
                for c in completed]
    stale: list[Finished] = []
    claimed: list[Task] | None = None  # None: claim (again)
    if finished:
        out = await cycle(store, worker_id, finished, agents, limit, lease_s)
        stale, claimed = out.stale, out.claimed
    listed = False
    wakeup = store.wakeup(CHANNEL)
    deadline = time.monotonic() + wait_s
    recheck_at = time.monotonic() + recheck_s
    try:
        while True:
            wakeup.clear()
            if claimed is None:
                claimed = (await claim(store, worker_id, agents, limit, lease_s)
                           ) if limit else []
            got = await with_models(store, await attempts.take_for_claim(store, claimed,
                                                                          lease_s))
            claimed = None
            left = deadline - time.monotonic()
            if got or left <= 0 or not limit:
                await instances.seen(store, worker_id, host, agents)
                return got, stale
            if not listed:  # listed as alive while it waits
                await instances.seen(store, worker_id, host, agents)
                listed = True
            elif recheck is not None and time.monotonic() >= recheck_at:
                await recheck()
                recheck_at = time.monotonic() + recheck_s
            # woken by a submit in this process; polled for other processes
            await wait_wakeup(wakeup, min(left, REMOTE_POLL))
    finally:
        store.forget_wakeup(CHANNEL, wakeup)


@dataclass(frozen=True)
class Claimed:
    """A task a remote worker claimed: the locks taken for its attempt, and the model
    its agent's ``model_ref`` resolves to (None: its agent names none)."""

    task: Task
    held: attempts.Held
    model: dict[str, Any] | None = None


async def with_models(store: Store, got: list[tuple[Task, attempts.Held]]) -> list[Claimed]:
    """Resolve each claimed task's ``model_ref`` as the in-process worker does (from the
    process's cache: no round trip unless a deploy changed it). A task whose model
    cannot be had (no such model, none deployed, that version archived) fails for good,
    as the worker fails it, and is left out."""
    out = []
    for task, held in got:
        definition = (await registry.get(store, task.agent, task.agent_version)).definition
        ref = definition.get("model_ref")
        if not ref:
            out.append(Claimed(task, held))
            continue
        try:
            model = await model_registry.resolve(store, ref)
        except (NotFound, Conflict) as exc:
            await queue.fail(store, task.id, task.attempt, {
                "type": type(exc).__name__, "message": exc.message}, retryable=False,
                release_locks=bool(held))
            continue
        out.append(Claimed(task, held, model))
    return out
