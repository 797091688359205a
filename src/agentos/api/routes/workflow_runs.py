"""/api/v1/workflow-runs: start, list, inspect, cancel, rerun and explain runs; their
artifacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from agentos.api.access import PrincipalDep
from agentos.api.deps import StoreDep
from agentos.api.schemas.workflows import (
    Artifacts,
    Explanation,
    RerunIn,
    RunDetail,
    RunIn,
    RunPage,
    StepTaskPage,
    TransitionPage,
)
from agentos.events import dump_json
from agentos.workflows import artifacts, runs
from agentos.workflows.states import RunStatus

router = APIRouter(prefix="/api/v1/workflow-runs", tags=["workflow-runs"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def start(store: StoreDep, principal: PrincipalDep, response: Response, body: RunIn
                ) -> RunDetail:
    """Start a run of a workflow's latest published version (or ``version``); an
    ``idempotency_key`` used before for the same request returns that run (200)."""
    found, created = await runs.start(store, runs.StartIn(
        body.workflow, body.version, body.input, body.idempotency_key, body.correlation_id,
        body.priority), by=principal.actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return RunDetail.model_validate(found)


@router.get("")
async def list_runs(
    store: StoreDep,
    workflow: Annotated[str | None, Query(max_length=63)] = None,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    before: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_PAGE)] = 100,
) -> RunPage:
    """Runs newest first, filtered; ``before`` = the last page's ``next_before``."""
    found, next_before = await runs.page(store, workflow=workflow, status=status_,
                                         since=since, until=until,
                                         before=before, limit=limit)
    return RunPage.model_validate({"runs": found, "next_before": next_before})


@router.get("/{run_id}")
async def get_run(store: StoreDep, run_id: str) -> RunDetail:
    """Every step's state, its first tasks and their attempts, outputs, and the latest
    transitions (bounded: a step's other tasks are paged by .../steps/{step}/tasks)."""
    return RunDetail.model_validate(await runs.get(store, run_id))


@router.get("/{run_id}/steps/{step}/tasks")
async def step_tasks(
    store: StoreDep, run_id: str, step: str,
    after: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_PAGE)] = 100,
) -> StepTaskPage:
    """One step's tasks with their attempts, round then item order; ``after`` = a
    step's ``tasks_next`` or the last page's ``next_after``."""
    found, next_after = await runs.step_tasks(store, run_id, step, after=after, limit=limit)
    return StepTaskPage.model_validate({"tasks": found, "next_after": next_after})


@router.get("/{run_id}/transitions")
async def run_transitions(
    store: StoreDep, run_id: str,
    after: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_PAGE)] = runs.MAX_PAGE,
) -> TransitionPage:
    """The run's whole transition history, oldest first, paged (the run's detail has
    the latest ones only)."""
    found, next_after = await runs.transitions(store, run_id, after=after, limit=limit)
    return TransitionPage.model_validate({"transitions": found, "next_after": next_after})


@router.post("/{run_id}/cancel")
async def cancel(store: StoreDep, run_id: str) -> RunDetail:
    """Cancel a running run (its running tasks too); 409 once it has ended."""
    return RunDetail.model_validate(await runs.cancel(store, run_id))


@router.post("/{run_id}/rerun")
async def rerun(store: StoreDep, run_id: str, body: RerunIn) -> RunDetail:
    """Run a failed run again from its failed step ``step``, keeping earlier outputs."""
    return RunDetail.model_validate(await runs.rerun(store, run_id, body.step))


@router.get("/{run_id}/explain")
async def explain(store: StoreDep, run_id: str) -> Explanation:
    """What the run waits for now."""
    return Explanation.model_validate(await runs.explain(store, run_id))


@router.get("/{run_id}/artifacts")
async def list_artifacts(store: StoreDep, run_id: str) -> Artifacts:
    """The run's artifacts (without their data)."""
    return Artifacts.model_validate({"artifacts": await artifacts.listing(store, run_id)})


@router.get("/{run_id}/artifacts/{name}", response_class=Response,
            responses={200: {"content": {"application/json": {},
                                         "application/octet-stream": {}}}})
async def get_artifact(store: StoreDep, run_id: str, name: str) -> Response:
    """One artifact's data: JSON as stored, or its bytes."""
    found = await artifacts.get(store, run_id, name)
    if found.kind == "bytes":
        return Response(bytes(found.value), media_type="application/octet-stream")
    return Response(dump_json(found.value), media_type="application/json")
