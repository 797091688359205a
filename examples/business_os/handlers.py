"""Handlers of the business agents: churn scoring with the deployed model, ERP sync."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from agentos.worker.handlers import Context, HandlerError

DATA = Path(__file__).parent / "data"
ERP_TIMEOUT = 30.0  # seconds; the task's own timeout (limits.timeout_s) ends it sooner


@cache
def customers() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((DATA / "customers.json").read_text())["customers"]
    return rows


def churn_risk(model: dict[str, Any], customer: dict[str, Any]) -> float:
    """The model's probability that ``customer`` churns (a logistic regression whose
    weights are the registered version's config)."""
    config = model["config"]
    z = config["bias"] + sum(w * customer[f] for f, w in config["weights"].items())
    return round(1 / (1 + math.exp(-z)), 4)


async def score_segment(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Score every customer of a segment with the churn model deployed now (``ctx.model``)."""
    model = ctx.model
    if model is None:
        raise HandlerError("churn-analyst needs its model_ref", retryable=False)
    segment = str(data["segment"])
    scores = {c["id"]: churn_risk(model, c) for c in customers() if c["segment"] == segment}
    if not scores:
        raise HandlerError(f"no customer in segment {segment!r}", retryable=False)
    threshold = float(ctx.config["risk_threshold"])
    at_risk = sorted(cid for cid, score in scores.items() if score >= threshold)
    ctx.metrics.count("customers.scored", len(scores), tags={"segment": segment})
    ctx.metrics.gauge("customers.at_risk", len(at_risk), tags={"segment": segment})
    used = f"{model['name']}@{model['version']}"
    if at_risk:
        await ctx.emit("churn.at_risk", {"segment": segment, "customers": at_risk,
                                         "model": used})
    return {"segment": segment, "model": used, "scores": scores, "at_risk": at_risk}


async def sync_invoice(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Push an invoice to the ERP. A 5xx or a dropped connection is retried (with the
    agent's backoff); a hang is ended by the task's timeout; a 4xx fails for good."""
    url = f"{ctx.config['erp_url'].rstrip('/')}/invoices/{data['invoice']}"
    try:
        async with httpx.AsyncClient(timeout=ERP_TIMEOUT) as http:
            answer = await http.post(url, json=data)
    except httpx.TransportError as exc:
        raise HandlerError(f"ERP unreachable: {exc!r}") from exc
    if answer.status_code >= 500:
        raise HandlerError(f"ERP answered {answer.status_code}: {answer.text[:200]}")
    if answer.status_code >= 400:
        raise HandlerError(f"ERP refused {data['invoice']}: {answer.text[:200]}",
                           retryable=False)
    booked: dict[str, Any] = answer.json()
    ctx.metrics.count("invoices.synced", 1, tags={"currency": str(data.get("currency"))})
    return booked
