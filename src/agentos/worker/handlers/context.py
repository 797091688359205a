"""What a handler gets besides its input: the ``Context``, and how it fails (``HandlerError``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

from agentos import (
    agent_config,
    agent_spec,
    approvals,
    budgets,
    events,
    knowledge,
    llm_client,
    locks,
    metrics,
    patterns,
    prices,
    queue,
    registry,
    semver,
    telemetry,
    traces,
)
from agentos import resources as resource_ids
from agentos.aio import wait_wakeup
from agentos.config import Settings
from agentos.errors import AgentOSError, Conflict, InvalidInput, NotFound
from agentos.lifecycle import Status as VersionStatus
from agentos.roles import Role
from agentos.store import Store
from agentos.tasks import DEFAULT_LEASE, Status, Task, TaskIn
from agentos.workflows import artifacts

Handler = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any]]]

CALL_POLL_INTERVAL = 0.25  # seconds between looks at a sub-task (a local commit wakes us sooner)


class HandlerError(Exception):
    """Raised by a handler to fail its attempt; ``retryable=False`` dead-letters at once."""

    def __init__(self, message: str, *, retryable: bool = True,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.fields = fields or {}  # more of the attempt's error (a command's stderr)


class SubTaskFailed(HandlerError):
    """A sub-agent task started by ``ctx.call`` failed or was cancelled.

    Not retryable by default: the sub-task has already used up its own retries.
    """

    def __init__(self, message: str, task: dict[str, Any]) -> None:
        super().__init__(message, retryable=False)
        self.task = task


class BudgetSpent(HandlerError):
    """``ctx.llm`` (or the ``llm`` handler) was refused by a spent hard budget. The
    attempt is handed back, not failed (``worker.outcomes``): its task waits ``wait_s``
    (0: its agent's budget holds the agent's tasks until the period rolls or the limit
    is raised) and does not spend a retry."""

    def __init__(self, message: str, details: dict[str, Any], wait_s: float) -> None:
        super().__init__(message)
        self.details = details
        self.wait_s = wait_s


class LockUnavailable(HandlerError):
    """``ctx.lock`` waited for its whole ``wait_s``; the attempt may be retried."""


@dataclass
class Usage:
    """LLM tokens and cost a handler reports; the worker records them on the attempt."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    _cost: float = 0.0
    _cost_known: bool = True

    def add(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.calls += 1
        if cost is None:
            self._cost_known = False  # a partial sum would understate the cost
        else:
            self._cost += cost

    @property
    def tokens(self) -> dict[str, int] | None:
        if not self.calls:
            return None
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens}

    @property
    def cost(self) -> float | None:
        """Total cost in the price table's currency; None when any call's price is unknown."""
        return round(self._cost, 10) if self.calls and self._cost_known else None


class KnowledgeAccess:
    """``ctx.knowledge``: the knowledge base as a handler sees it. Writes are signed
    ``agent:NAME``; a bad document fails the attempt for good (``HandlerError``)."""

    def __init__(self, store: Store, agent: str, config: knowledge.Config) -> None:
        self._store = store
        self._by = f"agent:{agent}"
        self._config = config

    async def put(self, namespace: str, key: str, content: str, *, title: str = "",
                  tags: list[str] | tuple[str, ...] = (), metadata: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        """Create or replace a document; returns it without its content."""
        draft = knowledge.Draft(content, title, tuple(tags), metadata or {})
        try:
            doc, _ = await knowledge.put(self._store, namespace, key, draft, by=self._by,
                                         config=self._config)
        except InvalidInput as exc:  # the 413 of a document too large is one too
            raise HandlerError(f"knowledge put {namespace}/{key}: {exc.message}",
                               retryable=False) from exc
        return doc

    async def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The document with its content, or None."""
        try:
            return await knowledge.get(self._store, namespace, key)
        except NotFound:
            return None

    async def search(self, q: str | None = None, *, namespace: str | None = None,
                     tags: list[str] | tuple[str, ...] = (), limit: int = 10
                     ) -> list[dict[str, Any]]:
        """The best ``limit`` documents for ``q`` (with snippets), or a listing."""
        page = await knowledge.search(self._store, knowledge.Query(
            q=q, namespace=namespace, tags=tuple(tags), limit=limit), self._config)
        return page.documents

    async def delete(self, namespace: str, key: str) -> bool:
        """Delete a document; whether there was one."""
        try:
            await knowledge.delete(self._store, namespace, key, by=self._by)
        except NotFound:
            return False
        return True


class LlmAccess:
    """``ctx.llm``: LLM calls through the ``openai`` client at AGENTOS_LLM_BASE_URL, each
    checked against hard budgets first, recorded (``telemetry``) and added to the
    attempt's ``usage``. The ``llm`` handler calls through the same path."""

    def __init__(self, ctx: Context, settings: Settings) -> None:
        self._ctx = ctx
        self._settings = settings

    def _model(self, model: agent_spec.ModelRef | dict[str, Any] | str | None
               ) -> agent_spec.ModelRef:
        if isinstance(model, agent_spec.ModelRef):
            return model
        if isinstance(model, str):
            default = self._ctx.agent.get("model") or {}
            return agent_spec.ModelRef(provider=default.get("provider", "openai"), name=model)
        found = model if model is not None else self._ctx.agent.get("model")
        if not found:
            raise HandlerError("no model: name one, or give the agent a model",
                               retryable=False)
        return agent_spec.ModelRef.model_validate(found)

    async def chat(self, messages: list[dict[str, Any]], *,
                   model: agent_spec.ModelRef | dict[str, Any] | str | None = None,
                   json: bool = False, **params: Any) -> llm_client.Completion:
        """One chat completion (``model``: a name, a model mapping, or the agent's).

        Raises ``HandlerError``: retryable for what another try may fix; ``BudgetSpent``
        when a hard budget is spent (the call is refused and recorded as such, and the
        attempt is handed back unless the handler catches it)."""
        ref = self._model(model)
        task = self._ctx.task
        call = {"provider": ref.provider, "model": ref.name, "agent": task["agent"],
                "task_id": task["id"], "attempt": task["attempt"],
                "correlation_id": task["correlation_id"], "at": datetime.now(UTC)}
        started = time.monotonic()
        try:
            await budgets.check(self._ctx.store, task["agent"], ref.name)
        except budgets.BudgetExceeded as exc:
            await self._record({**call, "outcome": "refused", "error": exc.message[:1000]})
            raise BudgetSpent(exc.message, exc.details, budgets.wait_after_refusal(
                exc.details, datetime.now(UTC))) from exc
        try:
            with traces.span("llm.chat", {"gen_ai.system": ref.provider,
                                          "gen_ai.request.model": ref.name,
                                          "agentos.task_id": task["id"],
                                          "agentos.correlation_id": task["correlation_id"]}
                             if traces.enabled() else None) as current:
                done = await llm_client.chat(
                    self._settings.llm_base_url,
                    self._settings.llm_api_key.get_secret_value()
                    if self._settings.llm_api_key else None,
                    ref.name, messages, {**ref.params, **params}, json_mode=json)
                traces.annotate(current, {"gen_ai.response.model": done.model,
                                          "gen_ai.usage.input_tokens": done.prompt_tokens,
                                          "gen_ai.usage.output_tokens": done.completion_tokens})
        except llm_client.LlmError as exc:
            await self._record({**call, "outcome": "error", "error": str(exc)[:1000],
                                "latency_ms": (time.monotonic() - started) * 1000})
            raise HandlerError(str(exc), retryable=exc.retryable) from exc
        cost = prices.cost([ref.name, done.model], ref.provider, done.prompt_tokens,
                           done.completion_tokens, self._settings.llm_prices)
        self._ctx.usage.add(done.prompt_tokens, done.completion_tokens, cost)
        await self._record({**call, "prompt_tokens": done.prompt_tokens,
                            "completion_tokens": done.completion_tokens, "cost": cost,
                            "latency_ms": (time.monotonic() - started) * 1000})
        return done

    async def _record(self, call: dict[str, Any]) -> None:
        try:
            await telemetry.record(self._ctx.store, [telemetry.CallIn(**call)],
                                   by=f"worker:{self._ctx.task['worker_id']}",
                                   price_table=self._settings.llm_prices)
        except Exception:  # the call itself happened: a lost record must not fail it
            self._ctx.log.exception("LLM call not recorded", extra={"action": "llm_unrecorded"})


class HandlerMetrics:
    """``ctx.metrics``: counters, gauges and histograms a handler records, tagged with
    its agent (so deleting the agent deletes them); buffered, written in batches."""

    def __init__(self, store: Store, agent: str) -> None:
        self._recorder = metrics.of(store)
        self._agent = agent

    def count(self, name: str, value: float = 1.0, tags: dict[str, Any] | None = None) -> None:
        self._recorder.count(name, value, {**(tags or {}), "agent": self._agent})

    def gauge(self, name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        self._recorder.gauge(name, value, {**(tags or {}), "agent": self._agent})

    def observe(self, name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        self._recorder.observe(name, value, {**(tags or {}), "agent": self._agent})


@dataclass
class Context:
    """What a handler gets besides its input."""

    claimed: Task  # the task as claimed (``task`` is its API form)
    agent: dict[str, Any]  # the agent version's definition
    store: Store
    heartbeat: Callable[[], Awaitable[None]]
    log: logging.LoggerAdapter[logging.Logger]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    usage: Usage = field(default_factory=Usage)
    lease_s: float = DEFAULT_LEASE
    held: dict[str, locks.Grant] = field(default_factory=dict)  # resource -> this attempt's lock
    took_locks: bool = False  # any lock taken: the attempt's end must look for them
    knowledge_config: knowledge.Config | None = None  # None: from the AGENTOS_* settings
    # the registry's model the definition's model_ref names, as resolved for this attempt
    model: dict[str, Any] | None = None
    # the agent's live config overrides as this attempt started (agent_config.overrides)
    config_overrides: dict[str, Any] = field(default_factory=dict)
    artifact_max_bytes: int | None = None  # None: AGENTOS_ARTIFACT_MAX_BYTES
    emitted: int = 0  # ctx.emit calls so far in this attempt (the derived dedup keys count them)

    @contextlib.asynccontextmanager
    async def lock(self, resource: str, *, wait_s: float = 30.0, ttl_s: float | None = None,
                   priority: int | None = None) -> AsyncIterator[locks.Grant]:
        """Hold ``resource`` for the block, beyond the agent's declared resources.

        Needs a ``permissions.lock`` glob that matches. The lock belongs to this
        attempt: its heartbeats renew it and it is released when the block ends,
        or at the latest when the attempt does. Waits up to ``wait_s`` in the
        queue, at the task's priority unless given; raises ``LockUnavailable``
        (retryable) if the wait ends first. A resource the attempt holds already
        is simply lent to the block.
        """
        if resource in self.held:
            yield self.held[resource]
            return
        name = self.task["agent"]
        try:
            resource_ids.check(resource)
            resource_ids.check_permitted(name, self.agent.get("permissions", {}).get("lock", []),
                                      [resource])
        except AgentOSError as exc:
            raise HandlerError(exc.message, retryable=False) from exc
        claim = locks.Claim(locks.task_owner(self.task["id"]),
                            priority or self.task["priority"], ttl_s or self.lease_s,
                            task_id=self.task["id"], agent=name, attempt=self.task["attempt"])
        self.took_locks = True  # set first: a cancelled wait may still leave a grant behind
        got = await locks.acquire(self.store, resource, claim, wait_s)
        if not got.granted:
            raise LockUnavailable(f"{resource} stayed locked for {wait_s:g}s (position "
                                  f"{got.position} in its queue)")
        grant = self.held[resource] = got.grants[0]
        try:
            yield grant
        finally:
            del self.held[resource]
            with contextlib.suppress(Conflict):  # lapsed or taken: nothing left to give back
                await locks.release(self.store, resource, claim.owner, grant.token)

    @contextlib.asynccontextmanager
    async def lock_any(self, resources: list[str] | None = None, *, prefix: str | None = None,
                       wait_s: float = 30.0, ttl_s: float | None = None,
                       priority: int | None = None) -> AsyncIterator[locks.Grant]:
        """Hold the first free resource of a pool for the block: of ``resources`` (in
        that order) or of the resources ever locked under ``prefix`` (e.g.
        ``"device:android-"``); ``grant.resource`` says which, ``grant.token`` is its
        fencing token. With none free, waits up to ``wait_s`` in every one's queue
        for the first granted, at the task's priority unless given; then raises
        ``LockUnavailable`` (retryable). Every listed resource needs a matching
        ``permissions.lock`` glob; of a prefix, only the matching ones are chosen
        from. Held, renewed and released like ``ctx.lock``; one of the pool this
        attempt holds already is lent to the block.
        """
        name = self.task["agent"]
        allowed = self.agent.get("permissions", {}).get("lock", [])
        try:
            pool = locks.pool(resources, prefix, lambda r: any(
                patterns.matches(glob, r) for glob in allowed))
            resource_ids.check_permitted(name, allowed, list(pool.names))
        except AgentOSError as exc:
            raise HandlerError(exc.message, retryable=False) from exc
        in_pool = (pool.names.__contains__ if prefix is None else
                   lambda r: r.startswith(prefix) and any(
                       patterns.matches(glob, r) for glob in allowed))
        lent = next((grant for r, grant in self.held.items() if in_pool(r)), None)
        if lent is not None:
            yield lent
            return
        claim = locks.Claim(locks.task_owner(self.task["id"]),
                            priority or self.task["priority"], ttl_s or self.lease_s,
                            task_id=self.task["id"], agent=name, attempt=self.task["attempt"])
        self.took_locks = True  # set first: a cancelled wait may still leave a grant behind
        try:
            got = await locks.acquire_any(self.store, pool, claim, wait_s)
        except NotFound as exc:  # a prefix nothing was ever locked under
            raise HandlerError(exc.message, retryable=False) from exc
        if not got.granted:
            raise LockUnavailable(f"every resource of {pool.label} stayed locked for "
                                  f"{wait_s:g}s (best: position {got.position} for "
                                  f"{got.waiting_for})")
        grant = self.held[grant_resource := got.grants[0].resource] = got.grants[0]
        try:
            yield grant
        finally:
            del self.held[grant_resource]
            with contextlib.suppress(Conflict):  # lapsed or taken: nothing left to give back
                await locks.release(self.store, grant_resource, claim.owner, grant.token)

    @cached_property
    def task(self) -> dict[str, Any]:
        """The task as the API shows it (built on first use: most handlers never look)."""
        return self.claimed.to_dict()

    @cached_property
    def knowledge(self) -> KnowledgeAccess:
        """The knowledge base: ``put``, ``get``, ``search``, ``delete``."""
        config = self.knowledge_config or knowledge.Config.from_settings(Settings())
        return KnowledgeAccess(self.store, self.claimed.agent, config)

    @cached_property
    def metrics(self) -> HandlerMetrics:
        """``ctx.metrics.count/gauge/observe(name, value, tags)``, tagged with the agent."""
        return HandlerMetrics(self.store, self.claimed.agent)

    @cached_property
    def llm(self) -> LlmAccess:
        """LLM calls (``await ctx.llm.chat(messages)``), recorded and budgeted."""
        return LlmAccess(self, Settings())

    @cached_property
    def config(self) -> dict[str, Any]:
        """The agent's typed config values: each declared key's live override (as the
        attempt started), else its default."""
        return agent_config.effective(self.agent.get("config", {}), self.config_overrides)

    async def emit(self, type: str, payload: dict[str, Any] | None = None,
                   priority: events.PriorityName = "normal", *,
                   dedup_key: str | None = None) -> events.Event:
        """Append an event caused by this task, in its correlation.

        Retries do not append it twice. Every emit carries a dedup key (the
        event log's own, as ``POST /api/v1/events`` takes it): ``dedup_key``
        when given, used as is (the same key from any task, run or producer is
        the same event, so name the thing, e.g. ``order:RUN:42``); otherwise
        one derived from this task's id, the emit's number within the attempt
        (1st, 2nd, ...), the type and the payload. An attempt that emitted and
        then failed and its retry that emits the same events in the same order
        append each once: the retry gets the first attempt's event back. An
        attempt that emits something different (another payload, another
        order) appends it. This is stronger than a Temporal activity or a
        Celery task, which redo their side effects on retry and leave
        idempotency to the user; here the event log is in the queue's
        database, so a task's emits are effectively once. To append the same
        event on every attempt on purpose, put the attempt in the payload
        (``ctx.task["attempt"]``) or pass a key of your own.

        When the definition declares ``permissions.emit`` (event-type globs),
        other types are refused with a non-retryable ``HandlerError``, so the
        attempt fails for good; an empty list allows none. An agent that does
        not declare it may emit any type.
        """
        allowed = self.agent.get("permissions", {}).get("emit")
        if allowed is not None and not any(patterns.matches(p, type) for p in allowed):
            raise HandlerError(
                f"agent {self.task['agent']} may not emit {type!r}: its permissions.emit "
                f"allows {', '.join(allowed) or 'no event types'}", retryable=False)
        self.emitted += 1
        payload = payload or {}
        if dedup_key is None:
            dedup_key = _emit_key(self.task["id"], self.emitted, type, payload)
        [appended] = await events.append(self.store, [events.EventIn(
            type=type, source=f"agent:{self.task['agent']}", payload=payload,
            priority=priority, correlation_id=self.task["correlation_id"],
            causation_id=self.task["id"], dedup_key=dedup_key)])
        return appended.event

    async def call(self, agent: str, input: dict[str, Any] | None = None, *,
                   timeout_s: float | None = None) -> dict[str, Any]:
        """Run ``agent`` as a sub-task of this task and return its output.

        Needs ``permissions.call_sub_agents``; when the definition lists
        ``sub_agents``, only those, at the highest published version in the
        listed range. The sub-task runs in this task's correlation, caused by
        it, at its priority; ``timeout_s`` is the sub-task's own timeout.
        Raises ``SubTaskFailed`` if it fails or is cancelled. If this handler
        is cancelled meanwhile, so is the sub-task. A worker needs a free slot
        for the sub-task while this one waits (concurrency >= 2).
        """
        version = await self._sub_agent_version(agent)
        try:
            [(child, _)] = await queue.submit(self.store, [TaskIn(
                agent=agent, version=version, input=input or {},
                priority=self.task["priority"], timeout_s=timeout_s,
                correlation_id=self.task["correlation_id"], causation_id=self.task["id"])])
        except AgentOSError as exc:
            raise HandlerError(f"cannot call {agent}: {exc.message}", retryable=False) from exc
        self.log.info("called %s: task %s", agent, child.id, extra={"action": "sub_task_called"})
        done = await self._await(child.id)
        if done.status is Status.SUCCEEDED:
            return dict(done.output or {})
        reason = (done.error or {}).get("message", "no error recorded")
        raise SubTaskFailed(f"sub-agent {agent} task {child.id} {done.status.value}: {reason}",
                            done.to_dict())

    async def approval(self, title: str, details: dict[str, Any] | None = None,
                       role: str = "operator", *, timeout_s: float | None = None,
                       on_timeout: str = "reject") -> dict[str, Any]:
        """Ask a person with ``role`` (or higher) to approve, and wait for the decision:
        ``{approved, by, comment, at}``. The request is listed by ``GET
        /api/v1/approvals``; asking again with the same title from this task (a retried
        attempt) waits for the same one. A timeout decides by ``on_timeout`` (approve or
        reject; ``fail`` raises a non-retryable ``HandlerError``), a cancelled one raises
        too. The task keeps its worker slot (and its lease, by heartbeats) meanwhile."""
        try:
            asked = approvals.Request(
                title, details or {}, Role(role), timeout_s, on_timeout,
                self.task["correlation_id"], task_id=self.task["id"],
                request_key=f"task:{self.task['id']}:{title}"[:300])
            found = await approvals.request(self.store, asked)
        except (AgentOSError, ValueError) as exc:
            raise HandlerError(f"cannot ask for approval: {exc}", retryable=False) from exc
        self.log.info("approval %s requested", found.id, extra={"action": "approval_requested"})
        decided = await approvals.wait(self.store, found.id)
        said = approvals.outcome(decided)
        if said is None or said["approved"] is None:
            raise HandlerError(f"approval {found.id} {decided.status.value}", retryable=False)
        return said

    async def artifact(self, name: str, data: Any) -> dict[str, Any]:
        """Store ``data`` (JSON, or bytes) as the named artifact of this task's workflow
        run, replacing one of that name; at most AGENTOS_ARTIFACT_MAX_BYTES. A task
        that is no step of a run, or data too large, fails the attempt for good."""
        limit = self.artifact_max_bytes or Settings().artifact_max_bytes
        try:
            return await artifacts.put(self.store, self.task["id"], name, data, limit)
        except AgentOSError as exc:
            raise HandlerError(f"artifact {name}: {exc.message}", retryable=False) from exc

    async def _sub_agent_version(self, agent: str) -> str | None:
        """The version to call (None: the latest published), or refuse the call."""
        name = self.task["agent"]
        if not self.agent.get("permissions", {}).get("call_sub_agents", False):
            raise HandlerError(f"agent {name} may not call sub-agents: set "
                               "permissions.call_sub_agents to true in its definition",
                               retryable=False)
        declared = self.agent.get("sub_agents", [])
        if not declared:
            return None
        wanted = next((s.get("version", "*") for s in declared if s["name"] == agent), None)
        if wanted is None:
            raise HandlerError(f"{agent} is not among the sub_agents of {name}", retryable=False)
        accepted = semver.parse_range(wanted)
        if not accepted.bounds:
            return None
        for candidate in await registry.versions(self.store, agent):  # highest first
            if candidate.status is VersionStatus.PUBLISHED and accepted.matches(candidate.version):
                return candidate.version
        raise HandlerError(f"no published version of {agent} matches {wanted!r}",
                           retryable=False)

    async def _await(self, task_id: str) -> Task:
        # every task.* transition appends an event, so a local commit wakes us at once
        wakeup = self.store.wakeup(events.CHANNEL)
        try:
            while True:
                wakeup.clear()
                task = await queue.get(self.store, task_id)
                if task.status.final:
                    return task
                await wait_wakeup(wakeup, CALL_POLL_INTERVAL)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # best effort: it may have just finished
                await queue.cancel(self.store, task_id)
            raise
        finally:
            self.store.forget_wakeup(events.CHANNEL, wakeup)


def _emit_key(task_id: str, n: int, type: str, payload: dict[str, Any]) -> str:
    """The dedup key of a task's ``n``-th emit in an attempt: the type and the payload
    (its keys sorted) as one digest, so the key stays well under the log's 255
    characters whatever the type's length, and no part of what tells two emits apart is
    cut off."""
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what the log cannot store: its own error, as the append says
        body = events.dump_json(payload).encode()
    digest = hashlib.sha256(type.encode() + b"\0" + body).hexdigest()[:32]
    return f"task:{task_id}:emit:{n}:{digest}"
