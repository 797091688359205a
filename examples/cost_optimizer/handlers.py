"""The cost agents and the optimizer.

A cost agent reads a customer's resources from the cloud and recommends stopping the
idle ones and moving the oversized ones to a smaller type, by its live config's
thresholds (``recommend`` is the pure rule); each recommendation is a
``recommendation.created`` event, routed to the optimizer. The optimizer applies one:
at once when it saves less than ``approval_threshold_usd`` a month, else only once an
operator approves it (``ctx.approval``); a rejection is recorded as
``optimization.rejected`` with who and why. Both record metrics tagged with the
customer.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentos.worker.handlers import Context, HandlerError

SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge")  # each twice the one before
CLOUD_TIMEOUT = 10.0  # seconds for one request to the cloud


def recommend(customer: str, resources: list[dict[str, Any]], prices: dict[str, float],
              config: dict[str, Any]) -> list[dict[str, Any]]:
    """What to change and what it saves a month: stop a resource whose CPU is under
    ``idle_cpu_pct``; else halve its type while the CPU it would then run at stays at or
    under ``rightsize_cpu_pct``. Resources carrying one of ``excluded_tags`` and savings
    under ``min_savings_usd`` are left out."""
    excluded = config["excluded_tags"] or {}
    found = []
    for r in resources:
        if r["state"] != "running" or any(r["tags"].get(k) == v for k, v in excluded.items()):
            continue
        family, size = r["type"].split(".")
        if r["cpu_avg_pct"] < config["idle_cpu_pct"]:
            change = {"action": "stop", "to": None,
                      "monthly_savings_usd": prices[r["type"]]}
        else:
            at, cpu = SIZES.index(size), r["cpu_avg_pct"]
            while at > 0 and cpu * 2 <= config["rightsize_cpu_pct"]:
                at, cpu = at - 1, cpu * 2
            target = f"{family}.{SIZES[at]}"
            if target == r["type"]:
                continue
            change = {"action": "resize", "to": target,
                      "monthly_savings_usd": prices[r["type"]] - prices[target]}
        if change["monthly_savings_usd"] >= config["min_savings_usd"]:
            found.append({"recommendation_id": f"{customer}:{r['id']}:{change['action']}",
                          "customer": customer, "resource": r["id"], "from": r["type"],
                          "cpu_avg_pct": r["cpu_avg_pct"], **change})
    return found


async def analyze(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A cost agent: one customer's recommendations -> recommendation.created each."""
    customer = str(data["customer"])
    config = ctx.config
    async with httpx.AsyncClient(timeout=CLOUD_TIMEOUT) as http:
        resources = (await _call(http, "GET", f"{_cloud(ctx)}/customers/{customer}/resources"
                                 ))["resources"]
        prices = await _call(http, "GET", f"{_cloud(ctx)}/prices")
    found = recommend(customer, resources, prices, config)
    tags = {"customer": customer}
    ctx.metrics.count("resources.analyzed", len(resources), tags=tags)
    ctx.metrics.count("recommendations", len(found), tags=tags)
    ctx.metrics.gauge("savings.potential_usd", sum(r["monthly_savings_usd"] for r in found),
                      tags=tags)
    for rec in found:
        await ctx.emit("recommendation.created", {**rec, "agent": ctx.task["agent"],
                                                  "lookback_days": config["lookback_days"]})
    return {"customer": customer, "resources": len(resources), "recommendations": found}


async def optimize(ctx: Context, rec: dict[str, Any]) -> dict[str, Any]:
    """The optimizer: apply a recommendation, after an operator's approval when it saves
    ``approval_threshold_usd`` a month or more -> optimization.applied or .rejected."""
    savings, customer = float(rec["monthly_savings_usd"]), str(rec["customer"])
    tags = {"customer": customer}
    approved_by = "auto: under the approval threshold"
    if savings >= float(ctx.config["approval_threshold_usd"]):
        change = f"resize to {rec['to']}" if rec["action"] == "resize" else "stop"
        said = await ctx.approval(
            f"{customer}: {change} {rec['resource']} ({rec['from']}, {rec['cpu_avg_pct']}% CPU),"
            f" saving {savings:.0f} USD a month?", rec, str(ctx.config["approver_role"]),
            timeout_s=float(ctx.config["approval_timeout_s"]))
        if not said["approved"]:
            ctx.metrics.count("optimizations", 1, tags={**tags, "outcome": "rejected"})
            rejected = {**rec, "by": said["by"], "comment": said.get("comment")}
            await ctx.emit("optimization.rejected", rejected)
            return {"applied": False, "rejected_by": said["by"], "comment": said.get("comment")}
        approved_by = str(said["by"])
    path = f"{_cloud(ctx)}/customers/{customer}/resources/{rec['resource']}/{rec['action']}"
    async with httpx.AsyncClient(timeout=CLOUD_TIMEOUT) as http:
        after = await _call(http, "POST", path, json={"to": rec["to"]} if rec["to"] else {})
    ctx.metrics.count("optimizations", 1, tags={**tags, "outcome": "applied"})
    ctx.metrics.count("savings.realized_usd", savings, tags=tags)
    await ctx.emit("optimization.applied", {**rec, "approved_by": approved_by,
                                            "state": after["state"], "type": after["type"]})
    return {"applied": True, "approved_by": approved_by, "resource": after}


def _cloud(ctx: Context) -> str:
    return str(ctx.config["cloud_url"]).rstrip("/")


async def _call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    try:
        answer = await http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise HandlerError(f"cloud unreachable: {exc!r}") from exc
    if answer.status_code >= 500:
        raise HandlerError(f"cloud answered {answer.status_code}: {answer.text[:200]}")
    if answer.status_code >= 400:
        raise HandlerError(f"cloud refused: {answer.text[:200]}", retryable=False)
    return answer.json()
