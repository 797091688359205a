"""/api/v1/metrics (query, record), /metrics (Prometheus) and an agent's summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agentos import metrics
from agentos.api.deps import SettingsDep, StoreDep
from agentos.api.schemas.metrics import Accepted, AgentSummary, MetricAnswer, SamplesIn
from agentos.metrics import exposition, query, summary

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])
prometheus_router = APIRouter(tags=["metrics"])
summary_router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.get("", response_model_by_alias=True)
async def query_metric(
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Query(max_length=200)],
    tags: Annotated[str | None, Query(max_length=2000, description="KEY:VALUE,...")] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    bucket: Annotated[str | None, Query(max_length=10, description="1m, 5m, 1h, 1d; "
                                        "none: one value for the range")] = None,
    agg: Annotated[str, Query(max_length=10, description=", ".join(query.AGGREGATIONS))
                   ] = "avg",
    group_by: Annotated[str | None, Query(max_length=63)] = None,
) -> MetricAnswer:
    """A metric over a range (default: the last hour): one point per bucket, per group."""
    answer = await query.run(store, query.Query(
        name=name, start=from_, end=to, bucket=bucket, agg=agg, tags=query.parse_tags(tags),
        group_by=group_by), query.Retention.from_settings(settings))
    return MetricAnswer.model_validate(answer)


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def record(store: StoreDep, body: SamplesIn) -> Accepted:
    """Record samples (a remote handler's); buffered and flushed in batches."""
    rec = metrics.of(store)
    for sample in body.samples:  # checked first: all or none
        rec.check(sample.kind, sample.name, sample.tags)
    for sample in body.samples:
        rec.record(sample.kind, sample.name, sample.value, sample.tags,
                   sample.at.timestamp() if sample.at else None)
    return Accepted(accepted=len(body.samples))


@prometheus_router.get("/metrics", response_class=Response,
                       responses={200: {"content": {"text/plain": {}}}})
async def prometheus(store: StoreDep) -> Response:
    """Every metric in Prometheus' text format (for a scrape with a viewer's API key)."""
    return Response(await exposition.render(store), media_type=exposition.CONTENT_TYPE)


@summary_router.get("/{name}/summary", response_model_by_alias=True)
async def agent_summary(store: StoreDep, settings: SettingsDep, name: str,
                        window: Annotated[str, Query(max_length=10)] = "24h") -> AgentSummary:
    """Success rate, p50/p95 duration, throughput, tokens and cost over ``window``."""
    return AgentSummary.model_validate(await summary.of_agent(
        store, name, window, query.Retention.from_settings(settings)))
