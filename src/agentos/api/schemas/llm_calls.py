"""/api/v1/llm-calls: LLM call records, reported and listed, and their summaries."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentos.telemetry import MAX_BATCH, CallIn

__all__ = ["CallIn", "CallPage", "CallsIn", "LlmCall", "Recorded", "Summary", "SummaryRow"]


class CallsIn(BaseModel):
    """The body of ``POST /api/v1/llm-calls`` for several calls at once."""

    model_config = ConfigDict(extra="forbid")

    calls: list[CallIn] = Field(min_length=1, max_length=MAX_BATCH)


class LlmCall(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    at: str | None
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None  # null: no price known for the model
    latency_ms: float
    outcome: Literal["ok", "error", "refused"]
    error: str | None
    agent: str | None
    task_id: str | None
    attempt: int | None
    correlation_id: str | None
    recorded_by: str


class Recorded(BaseModel):
    calls: list[LlmCall]


class CallPage(BaseModel):
    calls: list[LlmCall]
    next_before_id: int | None  # pass as ``before_id`` for the next page


class SummaryRow(BaseModel):
    key: str | None  # the model, the agent (null: calls of no agent) or the UTC day
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    unpriced: int  # calls whose cost is unknown (not in the sum)
    failed: int
    avg_latency_ms: float


class Summary(BaseModel):
    by: Literal["model", "agent", "day"]
    rows: list[SummaryRow]
