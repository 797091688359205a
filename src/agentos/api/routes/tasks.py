"""/api/v1/tasks: submit, inspect, cancel, retry; and the HTTP worker protocol
(claim, heartbeat, complete, fail) for workers in any language."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from agentos import claims, inputs, paging, queue, task_logs, tasks
from agentos.api import access
from agentos.api.deps import Limit, SettingsDep, StoreDep
from agentos.api.schemas import task_logs as log_schemas
from agentos.api.schemas import tasks as schemas
from agentos.documents import Document, errors_from, raise_invalid
from agentos.errors import InvalidInput
from agentos.tasks import Outcome, TaskIn
from agentos.worker import instances

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
MAX_WAIT = 30.0  # seconds a claim may long-poll


def _parse(items: list[Any], prefix: str) -> list[TaskIn]:
    try:
        return [TaskIn.model_validate(i) for i in items]
    except ValidationError:
        pass
    problems = []
    for n, item in enumerate(items):
        try:
            TaskIn.model_validate(item)
        except ValidationError as exc:
            where = f"{prefix}[{n}]." if prefix else ""
            problems += [{**e, "path": where + e["path"]}
                         for e in errors_from(exc, Document(item))]
    raise_invalid(problems, "task")
    raise AssertionError("unreachable")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.Task)
async def submit(store: StoreDep, response: Response, body: Annotated[Any, Body()]
                 ) -> dict[str, Any]:
    """Submit one task; an ``idempotency_key`` seen before returns the first task (200)."""
    if not isinstance(body, dict):
        raise InvalidInput("send a task object", code="bad_task")
    [(task, created)] = await queue.submit(store, _parse([body], ""))
    if not created:
        response.status_code = status.HTTP_200_OK
    return task.to_dict()


@router.post("/batch", status_code=status.HTTP_201_CREATED,
             response_model=schemas.SubmittedBatch)
async def submit_batch(store: StoreDep, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Submit many tasks in one transaction: all or none."""
    items = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise InvalidInput('send {"tasks": [...]}', code="bad_task")
    if len(items) > queue.MAX_BATCH:
        raise InvalidInput(f"at most {queue.MAX_BATCH} tasks per batch", code="batch_too_large")
    submitted = await queue.submit(store, _parse(items, "tasks"))
    return {"tasks": [{**task.to_dict(), "created": created} for task, created in submitted]}


@router.get("", response_model=schemas.TaskPage)
async def list_tasks(
    store: StoreDep,
    agent: str | None = None,
    status_: Annotated[tasks.Status | None, Query(alias="status")] = None,
    correlation_id: str | None = None,
    after_seq: Annotated[int, Query(ge=0, le=inputs.INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=queue.MAX_PAGE)] = 100,
    order: Literal["asc", "desc"] = "asc",
    before_seq: Annotated[int | None, Query(ge=1, le=inputs.INT64_MAX)] = None,
    type: Annotated[str | None, Query(max_length=63)] = None,
    since: inputs.Moment | None = None,  # a time zone is required: naive times are 422
    until: inputs.Moment | None = None,
) -> dict[str, Any]:
    """Tasks in submission order (page with ``after_seq`` = the previous
    ``next_after_seq``); ``order=desc``: the newest first (page with ``before_seq`` =
    the previous ``next_before_seq``). ``status=failed`` lists the dead-lettered ones;
    ``since``/``until``: those created at or after, and before, these times."""
    newest_first = order == "desc"
    page, following = await queue.list_tasks(store, agent, status_, correlation_id,
                                             after_seq, limit, newest_first=newest_first,
                                             before_seq=before_seq, type=type,
                                             since=since, until=until)
    cursor = "next_before_seq" if newest_first else "next_after_seq"
    return {"tasks": [t.to_dict() for t in page], cursor: following}


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: inputs.Attempt
    output: dict[str, Any] = Field(default_factory=dict)
    tokens: dict[str, inputs.Count] | None = None
    cost: Annotated[float, Field(ge=0)] | None = None


class CompleteIn(Result):
    logs: log_schemas.LogLinesIn = Field(default_factory=list)  # its lines since the last


class CompletedIn(Result):
    id: Annotated[str, Field(min_length=1, max_length=36)]


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: Annotated[str, Field(min_length=1, max_length=128)]
    agents: list[str] | None = None
    limit: Annotated[int, Field(ge=0, le=claims.MAX_CLAIM)] = 1
    wait_s: Annotated[float, Field(ge=0, le=MAX_WAIT)] = 0
    lease_s: Annotated[float, Field(gt=0, le=3600)] = tasks.DEFAULT_LEASE
    # attempts that succeeded since the caller's last claim, recorded in the same
    # transaction as this claim (one request per round trip, as the in-process worker)
    completed: Annotated[list[CompletedIn], Field(max_length=claims.MAX_CLAIM)] = Field(
        default_factory=list)

    @model_validator(mode="after")
    def _something_to_do(self) -> ClaimIn:
        if not self.limit and not self.completed:
            raise ValueError("limit must be at least 1 unless attempts are completed")
        if len({c.id for c in self.completed}) < len(self.completed):
            raise ValueError("a task may be completed once per claim")
        return self


@router.post("/claim", response_model=schemas.Claimed, response_model_exclude_unset=True)
async def claim(store: StoreDep, settings: SettingsDep, request: Request, body: ClaimIn
                ) -> dict[str, Any]:
    """Claim up to ``limit`` tasks; with ``wait_s`` > 0, long-poll until one is ready.

    ``completed`` records attempts that succeeded since the last claim in the same
    transaction as the claim (``limit`` 0: only that); the answer's ``stale`` lists
    those that were no longer current (superseded, as ``/complete`` would answer 409).
    A task whose agent declares ``resources`` comes with them locked for its attempt
    (``locks``: resource, fencing token, lease), released when the attempt ends and
    renewed by its heartbeats; one that must wait for a lock is handed back to the
    lock's queue instead of being returned. A task whose agent has a ``model_ref``
    comes with that model as deployed now (``model``; a task whose model cannot be had
    fails for good instead, as the in-process worker fails it). The caller is listed at
    ``/api/v1/workers`` (registered by its first claim)."""
    host = request.client.host if request.client else "unknown"
    completed = [claims.Finished(c.id, c.attempt, c.output, c.tokens, c.cost)
                 for c in body.completed]
    got, stale = await claims.claim_remote(store, body.worker_id, host, body.agents,
                                           body.limit, body.lease_s, body.wait_s, completed,
                                           recheck=lambda: access.recheck(request),
                                           recheck_s=settings.auth_cache_s)
    answer: dict[str, Any] = {"tasks": [_claimed(c) for c in got]}
    if completed:
        answer["stale"] = [{"id": f.task_id, "attempt": f.attempt} for f in stale]
    return answer


def _claimed(claimed: claims.Claimed) -> dict[str, Any]:
    out = claimed.task.to_dict()
    if claimed.held:
        out["locks"] = [grant.to_dict() for grant in claimed.held.values()]
    if claimed.model is not None:
        out["model"] = claimed.model
    return out


@router.get("/{task_id}", response_model=schemas.TaskDetail)
async def get(store: StoreDep, task_id: str,
              wait_s: Annotated[float, Query(ge=0, le=queue.MAX_WAIT_S)] = 0
              ) -> dict[str, Any]:
    """The task with every attempt (its execution records); with ``wait_s``, once it
    has ended or ``wait_s`` seconds have passed, whichever comes first."""
    if wait_s:
        return (await queue.wait(store, task_id, wait_s)).to_dict()
    return (await queue.get(store, task_id)).to_dict()


@router.post("/{task_id}/cancel", response_model=schemas.Task)
async def cancel(store: StoreDep, task_id: str) -> dict[str, Any]:
    return (await queue.cancel(store, task_id)).to_dict()


@router.post("/{task_id}/retry", response_model=schemas.Task)
async def retry(store: StoreDep, task_id: str) -> dict[str, Any]:
    return (await queue.retry(store, task_id)).to_dict()


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: inputs.Attempt
    lease_s: Annotated[float, Field(gt=0, le=3600)] = tasks.DEFAULT_LEASE
    logs: log_schemas.LogLinesIn = Field(default_factory=list)  # its lines since the last


class ErrorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(min_length=1, max_length=200)]
    message: Annotated[str, Field(max_length=10_000)] = ""
    traceback: Annotated[str, Field(max_length=100_000)] | None = None


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: inputs.Attempt
    error: ErrorIn
    outcome: Outcome = Outcome.FAILED  # cancelled only after a cancel request (else 409)
    retryable: StrictBool = True
    tokens: dict[str, inputs.Count] | None = None
    cost: Annotated[float, Field(ge=0)] | None = None
    logs: log_schemas.LogLinesIn = Field(default_factory=list)  # its lines since the last


def _logs(lines: list[log_schemas.LogLineIn], settings: Any) -> task_logs.Remote:
    return task_logs.Remote([x.sent() for x in lines], task_logs.Limits.from_settings(settings))


@router.post("/{task_id}/heartbeat", response_model=schemas.Heartbeat)
async def heartbeat(store: StoreDep, settings: SettingsDep, task_id: str, body: AttemptIn
                    ) -> dict[str, Any]:
    """Extend the lease of the current attempt; ``cancel_requested`` tells it to stop.
    ``logs``: the lines its handler wrote since the last request, kept with the attempt."""
    task = await claims.heartbeat(store, task_id, body.attempt, body.lease_s,
                                  _logs(body.logs, settings))
    if task.worker_id:  # a busy remote worker stays listed as alive
        await instances.touch(store, task.worker_id)
    return {"lease_expires_at": task.to_dict()["lease_expires_at"],
            "cancel_requested": task.cancel_requested}


@router.post("/{task_id}/complete", response_model=schemas.Task)
async def complete(store: StoreDep, settings: SettingsDep, task_id: str, body: CompleteIn
                   ) -> dict[str, Any]:
    return (await claims.complete(store, task_id, body.attempt, body.output, body.tokens,
                                 body.cost, logs=_logs(body.logs, settings))).to_dict()


@router.post("/{task_id}/fail", response_model=schemas.Task)
async def fail(store: StoreDep, settings: SettingsDep, task_id: str, body: FailIn
               ) -> dict[str, Any]:
    if body.outcome in (Outcome.RUNNING, Outcome.SUCCEEDED, Outcome.LOST, Outcome.DEFERRED):
        raise InvalidInput("outcome must be failed, timeout or cancelled", code="bad_outcome")
    return (await queue.fail(store, task_id, body.attempt, body.error.model_dump(),
                             body.outcome, body.retryable, body.tokens, body.cost,
                             logs=_logs(body.logs, settings))).to_dict()



workers_router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


@workers_router.get("", response_model=schemas.WorkerPage)
async def list_workers(store: StoreDep, include_stopped: bool = False,
                       after: str | None = None, limit: Limit = paging.DEFAULT_LIMIT
                       ) -> dict[str, Any]:
    """Registered worker instances by id; ``alive`` means a heartbeat within the last 15 s."""
    found, next_after = await instances.page(store, include_stopped, after, limit)
    return {"workers": found, "next_after": next_after}
