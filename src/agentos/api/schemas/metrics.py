"""/api/v1/metrics: samples to record, query answers; an agent's summary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_SAMPLES = 10_000  # per request


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)]
    kind: Literal["counter", "gauge", "histogram"]
    value: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    tags: dict[str, Annotated[str, Field(max_length=200)]] = Field(default_factory=dict)
    at: AwareDatetime | None = None  # when; now by default


class SamplesIn(BaseModel):
    """The body of ``POST /api/v1/metrics``: samples recorded by a process elsewhere."""

    model_config = ConfigDict(extra="forbid")

    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_SAMPLES)]


class Accepted(BaseModel):
    accepted: int  # buffered; written with the server's next flush (seconds)


class Point(BaseModel):
    at: str  # the bucket's start (the range's, without a bucket)
    value: float | None


class Group(BaseModel):
    group: str | None  # the group_by tag's value (null: no grouping)
    points: list[Point]


class MetricAnswer(BaseModel):
    name: str
    kind: Literal["counter", "gauge", "histogram"] | None
    agg: str
    tags: dict[str, str]
    group_by: str | None
    from_: str = Field(alias="from")
    to: str
    bucket: str | None
    resolutions: list[int]  # seconds: the rollups read (60, 3600)
    series: int  # how many series matched
    groups: list[Group]

    model_config = ConfigDict(populate_by_name=True)


class AgentSummary(BaseModel):
    agent: str
    window: str
    from_: str = Field(alias="from")
    to: str
    tasks: dict[str, int]  # ended tasks by outcome
    success_rate: float | None  # succeeded / (succeeded + failed)
    duration_ms: dict[str, float | None]  # p50, p95 of succeeded attempts
    throughput_per_hour: float
    llm_calls: int
    tokens: dict[str, int]
    cost: float
    unpriced_calls: int

    model_config = ConfigDict(populate_by_name=True)

