"""/api/v1/llm-calls and /api/v1/budgets: LLM telemetry and the budgets it is charged to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import ValidationError

from agentos import budgets, inputs, paging, telemetry
from agentos.api.access import PrincipalDep
from agentos.api.deps import SettingsDep, StoreDep
from agentos.api.schemas.budgets import Budget, BudgetChange, BudgetIn, Budgets
from agentos.api.schemas.llm_calls import CallIn, CallPage, CallsIn, Recorded, Summary
from agentos.documents import Document, errors_from, raise_invalid
from agentos.errors import InvalidInput

router = APIRouter(prefix="/api/v1/llm-calls", tags=["llm"])
budgets_router = APIRouter(prefix="/api/v1/budgets", tags=["budgets"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def report(store: StoreDep, settings: SettingsDep, principal: PrincipalDep,
                 body: Annotated[Any, Body()]) -> Recorded:
    """Record LLM calls a remote worker made: one call, or ``{"calls": [...]}``. A call
    without ``cost`` is priced from the price table; budgets are charged."""
    try:
        calls = CallsIn.model_validate(body).calls if isinstance(body, dict) and "calls" in body \
            else [CallIn.model_validate(body)]
    except ValidationError as exc:
        raise_invalid(errors_from(exc, Document(body)), "LLM call")
        raise AssertionError("unreachable") from exc
    return Recorded.model_validate({"calls": await telemetry.record(
        store, calls, by=principal.actor, price_table=settings.llm_prices)})


@router.get("")
async def list_calls(
    store: StoreDep,
    agent: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    task_id: str | None = None,
    correlation_id: str | None = None,
    outcome: telemetry.Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=inputs.INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=telemetry.MAX_PAGE)] = 100,
) -> CallPage:
    """Calls newest first, filtered; page with ``before_id``."""
    found, next_before = await telemetry.query(
        store, agent=agent, model=model, provider=provider, task_id=task_id,
        correlation_id=correlation_id, outcome=outcome, since=since, until=until,
        before_id=before_id, limit=limit)
    return CallPage.model_validate({"calls": found, "next_before_id": next_before})


@router.get("/summary")
async def summarise(store: StoreDep, by: telemetry.GroupBy = "model", agent: str | None = None,
                    model: str | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> Summary:
    """Calls, tokens, cost, failures and latency per model, agent or UTC day."""
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be after since", code="bad_range")
    return Summary.model_validate({"by": by, "rows": await telemetry.summary(
        store, by, agent=agent, model=model, since=since, until=until)})


@budgets_router.post("", status_code=status.HTTP_201_CREATED)
async def create_budget(store: StoreDep, principal: PrincipalDep, body: BudgetIn) -> Budget:
    """A token or cost budget per agent, per model, or global, per day or month."""
    return Budget.model_validate(await budgets.create(store, body, by=principal.actor))


@budgets_router.get("")
async def list_budgets(store: StoreDep,
                       after: Annotated[int | None, Query(ge=0, le=inputs.INT64_MAX)] = None,
                       limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)
                                        ] = paging.DEFAULT_LIMIT) -> Budgets:
    """Budgets by id with their current period's spend; page with ``after`` = the
    previous page's ``next_after``."""
    found, next_after = await budgets.listing(store, after, limit)
    return Budgets.model_validate({"budgets": found, "next_after": next_after})


@budgets_router.get("/{budget_id}")
async def get_budget(store: StoreDep,
                     budget_id: Annotated[int, Path(ge=1, le=inputs.INT64_MAX)]) -> Budget:
    return Budget.model_validate(await budgets.get(store, budget_id))


@budgets_router.patch("/{budget_id}")
async def change_budget(store: StoreDep, principal: PrincipalDep,
                        budget_id: Annotated[int, Path(ge=1, le=inputs.INT64_MAX)],
                        body: BudgetChange) -> Budget:
    """Raise (or lower) a limit, or make a budget hard or soft; holds follow at once."""
    return Budget.model_validate(await budgets.change(store, budget_id, body,
                                                      by=principal.actor))


@budgets_router.delete("/{budget_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_budget(store: StoreDep,
                        budget_id: Annotated[int, Path(ge=1, le=inputs.INT64_MAX)]) -> None:
    await budgets.delete(store, budget_id)
