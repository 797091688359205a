"""The business OS's week, as its people would run it through the API.

Install: the four agents, two users (an operator and a viewer), the ERP's address in
billing-sync's live config. Run: the churn model registered and deployed; the ops
lead's week — six segments scored in priority order, tickets triaged by an LLM, four
invoices pushed to a flaky ERP (one retried, one dead-lettered after timeouts) — then
a better model deployed over the first, the top segment scored again, the weekly
summary written, and an auditor who may read but not act.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from agentos import errors
from agentos.api.schemas.tasks import Task
from agentos.examples import (
    Example,
    Simulators,
    ensure_user,
    publish_agents,
    wait_for,
    wait_tasks,
)
from agentos.sdk import Client

AGENTS = ["agents/support-triage.yaml", "agents/churn-analyst.yaml",
          "agents/billing-sync.yaml", "agents/exec-reporter.yaml"]
USERS = {"ops-lead": ("operator", "ops-lead-password-1"),
         "auditor": ("viewer", "auditor-password-1")}
# the week's segments and how urgent each is (10 first)
SEGMENTS = {"smb": 3, "enterprise": 10, "startup": 1, "mid-market": 7, "education": 5,
            "public-sector": 9}
TICKETS = [("T-501", "C-0002", "Invoices export times out since the upgrade"),
           ("T-502", "C-0014", "How do I add a second admin?"),
           ("T-503", "C-0031", "Production outage: API returns 500 on every call")]
INVOICES = [("INV-2001", 1200.0), ("INV-2002", 87.5), ("INV-2003", 15400.0),
            ("INV-2004", 990.0)]
FLAKY, HANGING = "INV-2003", "INV-2004"
DUE_IN = timedelta(seconds=1.5)  # the segments become due together, after this
CACHE_TTL_S = 1.2  # a deploy reaches workers sharing SQLite within the cache's 1 s TTL


def install(client: Client, sims: Simulators) -> list[str]:
    lines = publish_agents(client, EXAMPLE, AGENTS)
    for name, (role, password) in USERS.items():
        lines.append(ensure_user(client, name, password, role))
    client.set_config("billing-sync", "erp_url", sims.handles["erp"].url)
    lines.append(f"billing-sync erp_url = {sims.handles['erp'].url} (live config)")
    return lines


def run(client: Client, sims: Simulators) -> dict[str, Any]:
    erp = sims.handles["erp"]
    erp.misbehave(FLAKY, fail=2)  # two 503s, then it books
    erp.misbehave(HANGING, hang_s=5)  # every request hangs past the 2 s timeout
    models = json.loads(EXAMPLE.read("data/models.json"))["churn"]
    first, second = models
    # the data science team registers and deploys the first churn model
    for version in models:
        _register(client, version)
    _deploy(client, first["version"])

    with Client(client.base_url) as ops:
        ops.login("ops-lead", USERS["ops-lead"][1])
        due = datetime.now(UTC) + DUE_IN
        week = f"{due:%G-W%V}"
        scored = ops.submit_batch([{"agent": "churn-analyst", "input": {"segment": s},
                                    "priority": p, "run_at": due.isoformat(),
                                    "type": "analyze",
                                    "metadata": {"requested_by": "ops-lead", "week": week}}
                                   for s, p in SEGMENTS.items()])
        tickets = [ops.emit("ticket.opened", {"ticket": t, "customer": c, "text": text})
                   for t, c, text in TICKETS]
        invoices = ops.submit_batch([{"agent": "billing-sync", "priority": 6, "type": "execute",
                                      "input": {"invoice": i, "amount": a, "currency": "EUR"},
                                      "metadata": {"ledger": "EU-1", "week": week}}
                                     for i, a in INVOICES])
        ended = wait_tasks(ops, [t.id for t in scored + invoices], timeout_s=90)
        # each ticket's triage task carries its event's correlation id (a task of an
        # earlier run on this database does not count)
        triaged = wait_for("the tickets' triage", lambda: _ended(
            [t for e in tickets for t in ops.list_tasks(
                agent="support-triage", correlation_id=e.correlation_id).tasks],
            len(TICKETS)))

    # a better model replaces the first; the top segment is scored again with it
    _deploy(client, second["version"])
    rescore = client.submit("churn-analyst", {"segment": "enterprise"}, priority=10,
                            type="analyze", metadata={"requested_by": "admin", "week": week})
    summary = client.submit("exec-reporter", {"figures": {
        "segments_scored": len(SEGMENTS), "tickets": len(TICKETS),
        "invoices_booked": len(erp.booked), "invoices_failed": 1}}, type="report")
    done = wait_tasks(client, [rescore.id, summary.id])
    # the team's pages read the agents again and again: the server's cache serves them
    for _ in range(5):
        for agent in ("support-triage", "churn-analyst", "billing-sync", "exec-reporter"):
            client.get_agent(agent)

    with Client(client.base_url) as auditor:
        auditor.login("auditor", USERS["auditor"][1])
        seen = len(auditor.list_tasks(limit=500).tasks)
        try:
            auditor.submit("billing-sync", {"invoice": "INV-9999", "amount": 1})
            refused = "no"
        except errors.Forbidden as exc:
            refused = exc.message

    order = sorted((t for t in ended.values() if t.agent == "churn-analyst"),
                   key=lambda t: t.attempts[0].started_at or due)
    return {
        "segments_in_order": [(t.input["segment"], t.priority) for t in order],
        "tickets_triaged": len(triaged),
        "invoices": {t.input["invoice"]: f"{t.status} after {len(t.attempts)} attempt(s)"
                     for t in ended.values() if t.agent == "billing-sync"},
        "models": {v["version"]: v["status"] for v in client.get_model("churn")["versions"]},
        "rescored_with": (done[rescore.id].output or {})["model"],
        "summary_tokens": done[summary.id].attempts[-1].tokens,
        "auditor": f"read {seen} tasks; submitting: {refused}",
        "cache_hit_rate": cache_hit_rate(client.prometheus()),
        "ids": {"segments": [t.id for t in scored],
                "invoices": [t.id for t in invoices],
                "tickets": [e.id for e in tickets], "rescore": rescore.id,
                "summary": summary.id},
    }


def _register(client: Client, version: dict[str, Any]) -> None:
    fields = {k: version[k] for k in ("framework", "description", "metrics", "config",
                                      "artifact_uri")}
    with contextlib.suppress(errors.Conflict):  # registered by an earlier run of the example
        client.register_model("churn", version["version"], version["type"], **fields)


def _deploy(client: Client, version: str) -> None:
    """Deploy a churn model version (one an earlier run deployed or archived stays so:
    the newer one serves), then give workers sharing SQLite the cache's TTL to see it."""
    try:
        client.deploy_model("churn", version)
    except errors.Conflict as exc:
        if exc.details.get("status") not in ("deployed", "archived"):
            raise
    time.sleep(CACHE_TTL_S)


def cache_hit_rate(exposition: str) -> float:
    """The share of the server's cache reads that were hits, from GET /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    reads = {"hit": 0.0, "miss": 0.0}
    for family in text_string_to_metric_families(exposition):
        if family.name == "agentos_cache_reads":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    reads[sample.labels["result"]] += sample.value
    total = reads["hit"] + reads["miss"]
    return round(reads["hit"] / total, 3) if total else 0.0


def _ended(tasks: list[Task], count: int) -> list[Task] | None:
    done = [t for t in tasks if t.final]
    return done if len(done) >= count else None


def _simulators() -> Simulators:
    from examples.business_os.erp import Erp
    from examples.simulators.llm import FakeLlm

    erp, llm = Erp().start(), FakeLlm().start()
    return Simulators(env={"AGENTOS_LLM_BASE_URL": llm.base_url},
                      handles={"erp": erp, "llm": llm}, stops=[erp.stop, llm.stop])


EXAMPLE = Example(
    name="business_os", title="Business agent OS", seed="002",
    summary="agents with models, prioritised tasks with retries and timeouts, roles, the "
            "audit log, an ML model deployed over another, tokens and cache hits",
    install=install, run=run, simulators=_simulators,
    dashboard=(("/tasks?agent=churn-analyst", "segments scored in priority order"),
               ("/tasks?agent=billing-sync", "INV-2003 retried, INV-2004 dead-lettered"),
               ("/models/churn", "1.1.0 deployed, 1.0.0 archived"),
               ("/llm", "tokens and cost by model"),
               ("/audit", "every action, the auditor's refusal too")))
