"""/api/v1/budgets: token or cost budgets and what their current period spent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from agentos.budgets import BudgetChange, BudgetIn

__all__ = ["Budget", "BudgetChange", "BudgetIn", "Budgets"]


class Budget(BaseModel):
    id: int
    scope: Literal["agent", "model", "global"]
    target: str | None
    metric: Literal["tokens", "cost"]
    period: Literal["day", "month"]
    limit: float
    hard: bool
    used: float  # in the current period
    ratio: float  # used / limit
    exceeded: bool
    period_start: str
    period_end: str  # when the period rolls (UTC)
    created_by: str
    created_at: str
    updated_at: str


class Budgets(BaseModel):
    budgets: list[Budget]
    next_after: int | None = None  # pass as ``after`` for the next page
