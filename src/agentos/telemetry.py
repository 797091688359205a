"""LLM call records (SPEC §2.9): every call through the ``llm`` handler, a handler's
``ctx.llm``, or reported by a remote worker (``POST /api/v1/llm-calls``) is one row:
provider, model, prompt and completion tokens, cost, latency, outcome, agent, task,
attempt, correlation id. A call without a cost is priced from the price table
(``prices``: AGENTOS_LLM_PRICES, else the ``genai-prices`` package). Recording a call
charges the budgets it falls under and adds its metrics (``samples``) in the same
transaction: no round trip of its own on an attempt's path, and the metrics count each
recorded call once.

    llm.calls      counter  {agent, model, outcome}   calls (ok, error, refused)
    llm.tokens     counter  {agent, model, type}      prompt and completion tokens
    llm.cost_usd   counter  {agent, model}            cost of the priced calls
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from agentos import audit, budgets, prices
from agentos.config import LlmPrice
from agentos.errors import InvalidInput
from agentos.metrics import recorder
from agentos.store import Store
from agentos.store import llm_calls as store_calls

MAX_PAGE = 500
MAX_BATCH = 1000  # calls one request may report
MAX_TOKENS = 2**53  # per call: beyond any model, within what JSON numbers keep exact
MAX_SKEW = timedelta(minutes=5)  # a reported call may not start later than this from now
Outcome = Literal["ok", "error", "refused"]
GroupBy = Literal["model", "agent", "day"]


class CallIn(BaseModel):
    """One LLM call, as a worker reports it."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    provider: Annotated[str, Field(min_length=1, max_length=63)] = "openai"
    model: Annotated[str, Field(min_length=1, max_length=200)]
    prompt_tokens: Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS)] = 0
    completion_tokens: Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS)] = 0
    cost: Annotated[float, Field(ge=0, le=1e12)] | None = None  # None: from the price table
    latency_ms: Annotated[float, Field(ge=0, le=86_400_000)] = 0.0
    outcome: Outcome = "ok"
    error: Annotated[str, Field(max_length=1000)] | None = None
    agent: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = None
    task_id: Annotated[str, Field(min_length=1, max_length=36)] | None = None
    attempt: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None
    correlation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    at: AwareDatetime | None = None  # when it started; None: now


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "at": _iso(row["at"]), "provider": row["provider"],
            "model": row["model"], "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
            "cost": row["cost"], "latency_ms": row["latency_ms"], "outcome": row["outcome"],
            "error": row["error"], "agent": row["agent"], "task_id": row["task_id"],
            "attempt": row["attempt"], "correlation_id": row["correlation_id"],
            "recorded_by": row["recorded_by"]}


async def record(store: Store, calls: list[CallIn], *, by: str,
                 price_table: dict[str, LlmPrice]) -> list[dict[str, Any]]:
    """Store calls (priced where they carry no cost) and charge their budgets, in one
    transaction; returns them as stored."""
    if len(calls) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} calls per request", code="batch_too_large")
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for call in calls:
        at = call.at.astimezone(UTC) if call.at is not None else now
        if at > now + MAX_SKEW:
            raise InvalidInput(f"a call cannot start in the future ({at.isoformat()})",
                               code="bad_call_time")
        cost = call.cost
        if cost is None and call.outcome == "ok":
            cost = prices.cost([call.model], call.provider, call.prompt_tokens,
                               call.completion_tokens, price_table)
        rows.append({"at": at, "provider": call.provider, "model": call.model,
                     "prompt_tokens": call.prompt_tokens,
                     "completion_tokens": call.completion_tokens, "cost": cost,
                     "latency_ms": call.latency_ms, "outcome": call.outcome,
                     "error": call.error, "agent": call.agent, "task_id": call.task_id,
                     "attempt": call.attempt, "correlation_id": call.correlation_id,
                     "recorded_by": by[:200]})
    async with store.write() as conn:
        ids = await store_calls.insert_many(conn, rows)
        await budgets.charge(store, conn, [
            budgets.Charge(r["at"], r["agent"], r["model"],
                           r["prompt_tokens"] + r["completion_tokens"], r["cost"])
            for r in rows], by=by)
        await recorder.write_in(conn, samples(rows))
        audit.names([str(i) for i in ids])
    return [public({**r, "id": i}) for r, i in zip(rows, ids, strict=True)]


def samples(rows: list[dict[str, Any]]) -> dict[recorder.Key, recorder.Agg]:
    """The metric samples of stored calls (pure): a call without an agent is tagged by
    its model only."""
    out: dict[recorder.Key, recorder.Agg] = {}
    for r in rows:
        at = r["at"].timestamp()
        base = ((("agent", r["agent"]),) if r["agent"] else ()) + (("model", r["model"]),)
        recorder.add(out, "counter", "llm.calls", 1.0, (*base, ("outcome", r["outcome"])), at)
        for kind in ("prompt", "completion"):
            if r[f"{kind}_tokens"]:
                recorder.add(out, "counter", "llm.tokens", float(r[f"{kind}_tokens"]),
                             (*base, ("type", kind)), at)
        if r["cost"] is not None:
            recorder.add(out, "counter", "llm.cost_usd", float(r["cost"]), base, at)
    return out


def _filters(agent: str | None, model: str | None, provider: str | None,
             task_id: str | None, correlation_id: str | None, outcome: str | None,
             since: datetime | None, until: datetime | None) -> dict[str, Any]:
    return {"agent": agent, "model": model, "provider": provider, "task_id": task_id,
            "correlation_id": correlation_id, "outcome": outcome, "since": since,
            "until": until}


async def query(store: Store, *, agent: str | None = None, model: str | None = None,
                provider: str | None = None, task_id: str | None = None,
                correlation_id: str | None = None, outcome: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                before_id: int | None = None, limit: int = 100
                ) -> tuple[list[dict[str, Any]], int | None]:
    """Calls newest first; the next page starts before the returned id."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    filters = _filters(agent, model, provider, task_id, correlation_id, outcome, since, until)
    async with store.read() as conn:
        rows = await store_calls.listing(conn, filters, before_id, limit + 1)
    page = rows[:limit]
    return [public(r) for r in page], (page[-1]["id"] if len(rows) > limit else None)


async def summary(store: Store, by: GroupBy, *, agent: str | None = None,
                  model: str | None = None, since: datetime | None = None,
                  until: datetime | None = None) -> list[dict[str, Any]]:
    """Per model, agent or UTC day: calls, tokens, cost, unpriced and failed calls,
    mean latency."""
    filters = _filters(agent, model, None, None, None, None, since, until)
    async with store.read() as conn:
        rows = await store_calls.summary(conn, by, filters)
    return [{"key": r["key"], "calls": int(r["calls"]),
             "prompt_tokens": int(r["prompt_tokens"]),
             "completion_tokens": int(r["completion_tokens"]),
             "total_tokens": int(r["prompt_tokens"]) + int(r["completion_tokens"]),
             "cost": round(float(r["cost"]), 10), "unpriced": int(r["unpriced"]),
             "failed": int(r["failed"]),
             "avg_latency_ms": float(r["avg_latency_ms"] or 0.0)} for r in rows]
