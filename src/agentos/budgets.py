"""Budgets (beyond the peers): token or cost limits per agent, per model, or global, per
UTC day or month.

Every recorded LLM call (``telemetry.record``) is charged, in its own transaction, to
each budget it falls under: its agent's, its model's, the global ones. A period's
spend crossing 80 % appends ``budget.warning``, crossing 100 % ``budget.exceeded``
(once per period, again after the limit is raised past it). A *hard* budget then:

- refuses an LLM call that would start over it (``check``: ``BudgetExceeded``);
- for an agent's budget, holds the agent's tasks (``held_agents``, until the period
  rolls): no claim takes them, they are not failed, their explain names the budget
  and when its period rolls; raising the limit above the spend releases them.

A soft budget (``hard: false``) only appends the events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, cache, events, paging
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.store import Store
from agentos.store import agent_config as store_holds
from agentos.store import budgets as store_budgets
from agentos.store import llm_calls as store_calls

CACHE_KIND = "budgets"
HOLD = "budget"  # the held_agents reason of a spent agent budget
RECHECK_S = 60.0  # seconds a task refused by a model's or the global budget waits to try again
WARN_AT = 0.8  # of the limit: budget.warning
MAX_LIMIT = 1e15

Scope = Literal["agent", "model", "global"]
Metric = Literal["tokens", "cost"]
Period = Literal["day", "month"]


class BudgetIn(BaseModel):
    """A budget to create: ``limit`` tokens (or cost, in the price table's currency) per
    ``period``, for one agent, one model, or everything (``scope: global``, no target)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    scope: Scope
    target: str | None = Field(default=None, min_length=1, max_length=200)
    metric: Metric
    period: Period
    limit: float = Field(ge=0, le=MAX_LIMIT)
    hard: StrictBool = True

    @model_validator(mode="after")
    def _target(self) -> BudgetIn:
        if (self.scope == "global") != (self.target is None):
            raise ValueError("a global budget has no target; an agent or model budget "
                             "names one")
        return self


class BudgetChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    limit: float | None = Field(default=None, ge=0, le=MAX_LIMIT)
    hard: StrictBool | None = None


class BudgetExceeded(Conflict):
    """An LLM call would start over a hard budget."""

    default_code = "budget_exceeded"


# ------------------------------------------------------------ pure periods


def period_start(period: str, at: datetime) -> datetime:
    """The start of the UTC day or month holding ``at``."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def period_end(period: str, at: datetime) -> datetime:
    """When the period holding ``at`` rolls."""
    start = period_start(period, at)
    if period == "day":
        return start + timedelta(days=1)
    return (start.replace(year=start.year + 1, month=1) if start.month == 12
            else start.replace(month=start.month + 1))


def applies(budget: dict[str, Any], agent: str | None, model: str) -> bool:
    if budget["scope"] == "global":
        return True
    return bool(budget["target"] == (agent if budget["scope"] == "agent" else model))


def amount(budget: dict[str, Any], tokens: int, cost: float | None) -> float:
    return float(tokens) if budget["metric"] == "tokens" else float(cost or 0.0)


def crossed(limit: float, before: float, after: float) -> list[str]:
    """The thresholds (``warning``, ``exceeded``) a spend moving from ``before`` to
    ``after`` crosses."""
    out = []
    for name, ratio in (("warning", WARN_AT), ("exceeded", 1.0)):
        line = limit * ratio
        if before < line <= after or (limit == 0 and before == 0 and after > 0):
            out.append(name)
    return out


# ----------------------------------------------------------------- access


async def all_budgets(store: Store) -> list[dict[str, Any]]:
    """Every budget (from the process's cache; changes empty it)."""
    return await cache.of(store).get(CACHE_KIND, "*", lambda: _all(store))


async def _all(store: Store) -> list[dict[str, Any]]:
    async with store.read() as conn:
        return await store_budgets.all_budgets(conn)


def _public(budget: dict[str, Any], usage: dict[str, Any] | None, now: datetime
            ) -> dict[str, Any]:
    used = float(usage["used"]) if usage else 0.0
    limit = float(budget["limit_value"])
    return {"id": budget["id"], "scope": budget["scope"], "target": budget["target"] or None,
            "metric": budget["metric"], "period": budget["period"], "limit": limit,
            "hard": budget["hard"], "used": used,
            "ratio": (used / limit) if limit else (math.inf if used else 0.0),
            "exceeded": used >= limit if limit else used > 0,
            "period_start": period_start(budget["period"], now).isoformat(),
            "period_end": period_end(budget["period"], now).isoformat(),
            "created_by": budget["created_by"], "created_at": budget["created_at"].isoformat(),
            "updated_at": budget["updated_at"].isoformat()}


async def listing(store: Store, after: int | None = None,
                  limit: int | None = paging.DEFAULT_LIMIT
                  ) -> tuple[list[dict[str, Any]], int | None]:
    """Budgets by id after ``after``, at most ``limit``, each with what its current
    period has spent; and the next page's cursor."""
    now = datetime.now(UTC)
    async with store.read() as conn:
        found, next_after = paging.cut(
            await store_budgets.all_budgets(conn, after, paging.fetch(limit)), limit,
            lambda b: int(b["id"]))
        usage = await store_budgets.usage(conn, [(b["id"], period_start(b["period"], now))
                                                 for b in found])
    return [_public(b, usage.get(b["id"]), now) for b in found], next_after


async def get(store: Store, budget_id: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with store.read() as conn:
        found = await store_budgets.get(conn, budget_id)
        if found is None:
            raise _missing(budget_id)
        usage = await store_budgets.usage(conn, [(budget_id,
                                                  period_start(found["period"], now))])
    return _public(found, usage.get(budget_id), now)


def _missing(budget_id: int) -> NotFound:
    return NotFound(f"no budget {budget_id}", code="budget_not_found", details={"id": budget_id})


async def create(store: Store, budget: BudgetIn, *, by: str) -> dict[str, Any]:
    """Create a budget (409 when one of that scope, target, metric and period exists)."""
    async with store.write() as conn:
        row = await store_budgets.insert(conn, {
            "scope": budget.scope, "target": budget.target or "", "metric": budget.metric,
            "period": budget.period, "limit_value": budget.limit, "hard": budget.hard,
            "created_by": by})
        if row is None:
            raise Conflict(f"a {budget.period} {budget.metric} budget for {budget.scope} "
                           f"{budget.target or ''} exists already: change its limit instead",
                           code="budget_exists")
        await cache.changed(store, conn)
        # what the period spent before the budget existed counts too
        now = datetime.now(UTC)
        tokens, cost = await store_calls.spent(
            conn, since=period_start(budget.period, now),
            agent=budget.target if budget.scope == "agent" else None,
            model=budget.target if budget.scope == "model" else None)
        spend = float(tokens) if budget.metric == "tokens" else cost
        if spend > 0:
            await _charge_one(store, conn, row, spend, now, by)
        audit.names([str(row["id"])])
    return await get(store, row["id"])


async def change(store: Store, budget_id: int, changes: BudgetChange, *, by: str
                 ) -> dict[str, Any]:
    """Change a budget's limit or hardness; its holds follow at once."""
    if changes.limit is None and changes.hard is None:
        raise InvalidInput("give limit and/or hard", code="nothing_to_change")
    async with store.write() as conn:
        before = await store_budgets.get(conn, budget_id, lock=True)
        if before is None:
            raise _missing(budget_id)
        values: dict[str, Any] = {}
        if changes.limit is not None:
            values["limit_value"] = changes.limit
        if changes.hard is not None:
            values["hard"] = changes.hard
        await store_budgets.change(conn, budget_id, values)
        if (entry := audit.pending()) is not None:
            entry.details["change"] = {"limit": [before["limit_value"],
                                                 values.get("limit_value",
                                                            before["limit_value"])],
                                       "hard": [before["hard"], values.get("hard",
                                                                           before["hard"])]}
        after = await store_budgets.get(conn, budget_id)
        assert after is not None
        await cache.changed(store, conn)
        await _settle(store, conn, after, by=by)
    return await get(store, budget_id)


async def delete(store: Store, budget_id: int) -> None:
    async with store.write() as conn:
        if not await store_budgets.remove(conn, budget_id):
            raise _missing(budget_id)
        await store_holds.release(conn, reason=HOLD, ref=str(budget_id))
        await cache.changed(store, conn)


async def _settle(store: Store, conn: AsyncConnection, budget: dict[str, Any],
                  by: str = "budgets") -> None:
    """Make the budget's holds and flags match its current period after its limit (or
    hardness) changed: release or hold its agent, re-arm the events below the limit."""
    now = datetime.now(UTC)
    start = period_start(budget["period"], now)
    usage = (await store_budgets.usage(conn, [(budget["id"], start)])).get(budget["id"])
    used = float(usage["used"]) if usage else 0.0
    limit = float(budget["limit_value"])
    over = used >= limit if limit else used > 0
    if usage is not None:
        flags = {"exceeded": usage["exceeded"] and over,
                 "warned": usage["warned"] and used >= limit * WARN_AT}
        if over and not usage["exceeded"]:
            flags["exceeded"] = True
            await _announce(store, conn, budget, "exceeded", used, now, by)
        await store_budgets.set_flags(conn, budget["id"], start, **flags)
    await _hold(conn, budget, over, now, used)


async def _hold(conn: AsyncConnection, budget: dict[str, Any], over: bool, now: datetime,
                used: float) -> None:
    if budget["scope"] != "agent":
        return  # a model's or the global budget refuses calls; it holds no agent
    if over and budget["hard"]:
        until = period_end(budget["period"], now)
        await store_holds.hold(conn, budget["target"], HOLD, str(budget["id"]), until, {
            "budget": budget["id"], "metric": budget["metric"], "period": budget["period"],
            "limit": float(budget["limit_value"]), "used": used,
            "rolls_at": until.isoformat()})
    else:
        await store_holds.release(conn, reason=HOLD, ref=str(budget["id"]))


async def _announce(store: Store, conn: AsyncConnection, budget: dict[str, Any], what: str,
                    used: float, now: datetime, by: str) -> None:
    await events.append_in(store, conn, [events.Draft(
        type=f"budget.{what}", source=by, subject=f"budget:{budget['id']}",
        payload={"budget": budget["id"], "scope": budget["scope"],
                 "target": budget["target"] or None, "metric": budget["metric"],
                 "period": budget["period"], "limit": float(budget["limit_value"]),
                 "used": used, "hard": budget["hard"],
                 "period_end": period_end(budget["period"], now).isoformat()})])


# ------------------------------------------------------------ calls


@dataclass(frozen=True)
class Charge:
    """One recorded call, as budgets see it."""

    at: datetime
    agent: str | None
    model: str
    tokens: int
    cost: float | None


async def charge(store: Store, conn: AsyncConnection, calls: Sequence[Charge], *,
                 by: str) -> None:
    """Charge recorded calls to the budgets they fall under, within the recording
    transaction: events at 80 % and 100 %, holds for spent hard agent budgets."""
    found = await all_budgets(store)
    if not found:
        return
    for call in calls:
        for budget in found:
            if not applies(budget, call.agent, call.model):
                continue
            spend = amount(budget, call.tokens, call.cost)
            if spend > 0:
                await _charge_one(store, conn, budget, spend, call.at, by)


async def _charge_one(store: Store, conn: AsyncConnection, budget: dict[str, Any],
                      spend: float, at: datetime, by: str) -> None:
    """Add ``spend`` to the budget's period holding ``at``: the events of the thresholds
    it crosses (once a period), the agent's hold when a hard budget is spent."""
    start = period_start(budget["period"], at)
    row = await store_budgets.charge(conn, budget["id"], start, spend)
    after = float(row["used"])
    flags = {}
    for what in crossed(float(budget["limit_value"]), after - spend, after):
        flag = "warned" if what == "warning" else "exceeded"
        if not row[flag]:
            flags[flag] = True
            await _announce(store, conn, budget, what, after, at, by)
    if flags:
        await store_budgets.set_flags(conn, budget["id"], start, **flags)
    if flags.get("exceeded") and start == period_start(budget["period"], datetime.now(UTC)):
        await _hold(conn, budget, True, at, after)


async def check(store: Store, agent: str | None, model: str) -> None:
    """Refuse (``BudgetExceeded``) a call that would start over a hard budget."""
    hard = [b for b in await all_budgets(store) if b["hard"] and applies(b, agent, model)]
    if not hard:
        return
    now = datetime.now(UTC)
    async with store.read() as conn:
        usage = await store_budgets.usage(conn, [(b["id"], period_start(b["period"], now))
                                                 for b in hard])
    for budget in hard:
        used = float(usage[budget["id"]]["used"]) if budget["id"] in usage else 0.0
        limit = float(budget["limit_value"])
        if used >= limit:
            rolls = period_end(budget["period"], now)
            who = f"{budget['scope']} {budget['target']}".strip()
            raise BudgetExceeded(
                f"the {budget['period']} {budget['metric']} budget of {who} (id "
                f"{budget['id']}) is spent: {used:g} of {limit:g}; it rolls at "
                f"{rolls.isoformat()}", details={"budget": budget["id"],
                                                 "scope": budget["scope"], "used": used,
                                                 "limit": limit, "rolls_at": rolls.isoformat()})


def wait_after_refusal(details: dict[str, Any], now: datetime) -> float:
    """Seconds a task whose LLM call a spent budget refused (``BudgetExceeded``'s
    details) waits before it may run again: none for an agent's budget, whose hold
    keeps the agent's tasks from a claim until the period rolls or the limit is raised;
    for a model's or the global budget, which hold nothing, ``RECHECK_S`` or until the
    period rolls, whichever is sooner."""
    if details["scope"] == "agent":
        return 0.0
    rolls = datetime.fromisoformat(details["rolls_at"])
    return max(0.0, min(RECHECK_S, (rolls - now).total_seconds()))
