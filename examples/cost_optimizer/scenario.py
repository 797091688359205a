"""The FinOps team's week, as its people would run it through the API.

Install: two cost agents and the optimizer, a FinOps lead (operator) and the cloud's
address in each agent's live config. Run: the lead tunes a typed threshold (and is
refused two bad values), switches the rightsizing capability off while the pricing
feed is stale (the analyses that need it wait) and on again, the agents recommend
and the optimizer applies what saves little at once and waits for her on what saves
much — she approves one and rejects one — then the retired cost agent is deleted,
its config, capabilities, state and metrics with it, its history kept.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from agentos import errors
from agentos.examples import (
    Example,
    Simulators,
    ensure_user,
    publish_agents,
    wait_for,
    wait_tasks,
)
from agentos.sdk import Client

AGENTS = ["agents/cost-agent-1.yaml", "agents/cost-agent-2.yaml", "agents/optimizer.yaml"]
LEAD = ("finops-lead", "operator", "finops-lead-password-1")
CUSTOMERS = {"cost-agent-1": ["acme-corp", "globex"], "cost-agent-2": ["initech"]}
APPROVE, REJECT = "acme-corp:vm-a2:resize", "globex:db-g2:resize"
REJECTION = "globex has a change freeze until the quarter closes"
HELD_FOR_S = 1.5  # how long the analyses are left waiting on the switched-off capability
METRICS_FLUSH_S = 30.0  # handlers' metrics are flushed every 5 s; a margin for a busy machine
RETIRED = "cost-agent-2"
METRICS = ("recommendations", "savings.realized_usd")  # summed by customer in the outcome


def install(client: Client, sims: Simulators) -> list[str]:
    lines = publish_agents(client, EXAMPLE, AGENTS)
    name, role, password = LEAD
    lines.append(ensure_user(client, name, password, role))
    url = sims.handles["cloud"].url
    for agent in ("cost-agent-1", "cost-agent-2", "optimizer"):
        client.set_config(agent, "cloud_url", url)
    lines.append(f"cost-agent-1, cost-agent-2, optimizer cloud_url = {url} (live config)")
    return lines


def run(client: Client, sims: Simulators) -> dict[str, Any]:
    with Client(client.base_url) as lead:
        lead.login(LEAD[0], LEAD[2])
        # typed thresholds: a value inside the declaration is taken, others refused
        lead.set_config("cost-agent-1", "idle_cpu_pct", 10.0)
        refused = {}
        for key, value in (("idle_cpu_pct", 150), ("lookback_days", "two weeks")):
            try:
                lead.set_config("cost-agent-1", key, value)
            except errors.AgentOSError as exc:
                refused[key] = f"{exc.code}: {exc.message}"
        # what the metrics summed before (an earlier run of the example, within the hour)
        before = {name: _by_customer(client, name) for name in METRICS}
        # rightsizing off while the pricing feed is stale: the analyses needing it wait
        lead.disable_capability("cost-agent-1", "rightsizing", "pricing feed stale")
        analyses = lead.submit_batch([{"agent": agent, "input": {"customer": c},
                                       "type": "analyze", "capability": "rightsizing",
                                       "metadata": {"requested_by": LEAD[0]}}
                                      for agent, customers in CUSTOMERS.items()
                                      for c in customers])
        time.sleep(HELD_FOR_S)
        held = {t["input"]["customer"]: _held(lead, t["id"]) for t in analyses
                if t["agent"] == "cost-agent-1"}
        state_held = lead.agent_state("cost-agent-1")["held"]
        lead.enable_capability("cost-agent-1", "rightsizing", "pricing feed back")
        analysed = wait_tasks(lead, [t["id"] for t in analyses])
        expected = sum(len(t["output"]["recommendations"]) for t in analysed.values())

        # the optimizer applies the small ones and waits for the lead on the large ones
        pending = wait_for("the approvals", lambda: _pending(lead, 2), timeout_s=30)
        correlations = [t["correlation_id"] for t in analysed.values()]
        wait_for("the optimizations under the threshold", lambda: _ended(
            _optimizations(lead, correlations), expected - len(pending)), timeout_s=30)
        optimizer_waiting = lead.agent_state("optimizer")  # the approvals' tasks wait
        decided = {}
        for approval in pending:
            rec = approval["details"]["recommendation_id"]
            if rec == APPROVE:
                decided[rec] = lead.approve(approval["id"], "worth it")["status"]
            elif rec == REJECT:
                decided[rec] = lead.reject(approval["id"], REJECTION)["status"]
        optimized = wait_for("the optimizations", lambda: _ended(
            _optimizations(lead, correlations), expected), timeout_s=30)
    # the metrics, once the workers have flushed what this run's tasks recorded
    added: dict[str, dict[str, float]] = {name: {} for name in METRICS}
    for task in analysed.values():
        added["recommendations"][task["input"]["customer"]] = \
            len(task["output"]["recommendations"])
    for task in optimized:
        if task["output"]["applied"]:
            mine = added["savings.realized_usd"]
            customer = task["input"]["customer"]
            mine[customer] = mine.get(customer, 0.0) + task["input"]["monthly_savings_usd"]
    metrics = {}
    for name, want in added.items():
        total = {c: before[name].get(c, 0.0) + v for c, v in want.items()}
        wait_for(f"the metric {name} by customer", functools.partial(
            _sums_are, client, name, before[name] | total), timeout_s=METRICS_FLUSH_S)
        metrics[name] = want
    retired = _retire(client)
    cloud = sims.handles["cloud"]
    return {
        "refused": refused,
        "held_while_off": held,
        "state_held": [h["reason"] + ":" + h["ref"] for h in state_held],
        "recommendations": sorted(r["recommendation_id"] for t in analysed.values()
                                  for r in t["output"]["recommendations"]),
        "optimizer_while_waiting": {k: optimizer_waiting[k] for k in ("status", "running")},
        "decisions": decided,
        "optimizations": {t["input"]["recommendation_id"]: (
            "applied: " + t["output"]["approved_by"] if t["output"]["applied"]
            else f"rejected by {t['output']['rejected_by']}") for t in optimized},
        "cloud_actions": [f"{a['customer']} {a['resource']} {a['action']} {a.get('to', '')}"
                          .strip() for a in cloud.actions],
        "recommendations_by_customer": metrics["recommendations"],
        "savings_realized_usd": metrics["savings.realized_usd"],
        "retired": retired,
        "ids": {"analyses": [t["id"] for t in analyses]},
    }


def _held(client: Client, task_id: str) -> str:
    """The task's status and the gate holding it (``explain``)."""
    task, why = client.get_task(task_id), client.explain_task(task_id)
    return f"{task['status']}, gate {why['gate']}"


def _pending(client: Client, count: int) -> list[dict[str, Any]] | None:
    found = client.list_approvals(status="pending")["approvals"]
    return found if len(found) >= count else None


def _optimizations(client: Client, correlations: list[str]) -> list[dict[str, Any]]:
    """The optimizer's tasks routed from these analyses' recommendations."""
    return [t for c in correlations for t in client.list_tasks(correlation_id=c)["tasks"]
            if t["agent"] == "optimizer"]


def _ended(tasks: list[dict[str, Any]], count: int) -> list[dict[str, Any]] | None:
    done = [t for t in tasks if t["status"] in ("succeeded", "failed", "cancelled")]
    return done if len(done) >= count else None


def _sums_are(client: Client, name: str, want: dict[str, float]) -> bool:
    """Whether the metric's sums by customer are ``want``."""
    found = _by_customer(client, name)
    return set(found) == set(want) and all(abs(found[c] - want[c]) < 1e-6 for c in want)


def _by_customer(client: Client, name: str) -> dict[str, float]:
    """A handler metric's sum over the last hour, by its ``customer`` tag."""
    try:
        found = client.query_metric(name, agg="sum", group_by="customer")
    except errors.NotFound:  # no process has flushed one yet
        return {}
    return {g["group"]: sum(p["value"] for p in g["points"]) for g in found["groups"]}


def _retire(client: Client) -> dict[str, Any]:
    """The offboarded accounts' agent: overridden, switched, measured — then deleted."""
    client.set_config(RETIRED, "min_savings_usd", 100.0)
    client.disable_capability(RETIRED, "rightsizing", "accounts offboarded")
    before = {"metric_series": client.query_metric(
        "recommendations", agg="sum", tags={"agent": RETIRED})["series"]}
    removed = client.delete_agent(RETIRED)
    after = {}
    for what, read in (("config", client.agent_config), ("capabilities", client.capabilities),
                       ("state", client.agent_state), ("agent", client.get_agent)):
        try:
            read(RETIRED)
            after[what] = "still there"
        except errors.NotFound as exc:
            after[what] = exc.code
    after["metric_series"] = client.query_metric("recommendations", agg="sum",
                                                 tags={"agent": RETIRED})["series"]
    kept = {"events": len(list(client.iter_events(source=f"agent:{RETIRED}"))),
            "audit": sorted({e["action"] for e in client.audit(limit=500)["entries"]
                             if str(e["resource_id"] or "").split("/")[0] == RETIRED})}
    return {"before": before, "removed": removed, "after": after, "kept": kept}


def _simulators() -> Simulators:
    from examples.cost_optimizer.cloud import Cloud

    cloud = Cloud().start()
    return Simulators(handles={"cloud": cloud}, stops=[cloud.stop])


EXAMPLE = Example(
    name="cost_optimizer", title="Cost optimizer", seed="004",
    summary="cost agents with typed thresholds, live state, capabilities switched live, "
            "metrics per customer, approvals before optimising, a cascading delete",
    install=install, run=run, simulators=_simulators,
    dashboard=(("/agents/cost-agent-1", "typed config, capabilities, live state"),
               ("/approvals?status=all", "the approved and the rejected optimisation"),
               ("/tasks?agent=optimizer", "optimisations applied, waiting, rejected"),
               ("/events?type=optimization.*", "applied and rejected, with who and why"),
               ("/audit", "config, capability switches, decisions, the delete")))
