"""The agent platform's first day, as its people would run it through the API.

Install (the platform's first start): the ten default agents, the publishing
workflow, the existing handbook migrated into the knowledge base, an editor. Run: CI
(an API key) starts two articles on related topics; the editor (a login session)
approves the first and rejects the second at the approval gate; the second's writer
applies the lesson the first's review left in the knowledge base; an uploaded document
is summarised; sessions, keys, metrics and the pool's health are read back.
"""

from __future__ import annotations

import re
from typing import Any

from agentos import errors
from agentos.api.schemas.tasks import Task
from agentos.examples import (
    Example,
    Simulators,
    ensure_user,
    publish_agents,
    publish_workflows,
    wait_for,
)
from agentos.sdk import Client

EDITOR = ("editor", "editor-password-1")
FIRST = "Rotating logs when a device disk is full"
SECOND = "Freeing disk space on shared test devices"
RUN_TIMEOUT_S = 90.0


def install(client: Client, sims: Simulators) -> list[str]:
    lines = publish_agents(client, EXAMPLE, ["agents/defaults.yaml"])
    lines += publish_workflows(client, EXAMPLE, ["workflows/publish-article.yaml"])
    handbook = sorted((EXAMPLE.path / "data" / "handbook").glob("*.md"))
    for page in handbook:  # the knowledge the platform had before, migrated
        text = page.read_text("utf-8")
        title = re.sub(r"^#\s*", "", text.splitlines()[0])
        client.put_document("handbook", page.stem, text, title=title, tags=["handbook"])
    lines.append(f"knowledge: {len(handbook)} handbook pages migrated")
    lines.append(ensure_user(client, EDITOR[0], EDITOR[1], "operator"))
    return lines


def run(client: Client, sims: Simulators) -> dict[str, Any]:
    key = client.create_api_key("ci-pipeline", "operator", expires_in_days=30)
    with Client(client.base_url, token=key.key) as ci, \
            Client(client.base_url) as editor:
        editor.login(*EDITOR)
        first = _article(ci, editor, FIRST, approve=True)
        second = _article(ci, editor, SECOND, approve=False)
        upload = ci.emit("document.uploaded", {"name": "postmortem-42.md", "text": (
            "On Tuesday the pixel-7 pool ran out of disk; installs failed for two hours "
            "until the logs were rotated and the caches cleared.")})
    summary = wait_for("the uploaded document's summary", lambda: _ended(
        client.list_tasks(correlation_id=upload.correlation_id).tasks))
    # what the platform shows of itself
    sessions = client.list_sessions()["sessions"]
    keys = client.list_api_keys().api_keys
    published = wait_for("the articles.published metric (flushed every 5 s)", lambda: _sum(
        client, "articles.published"), timeout_s=30)
    pool = client.ready()["pool"]
    return {
        "article": {"first": first["said"], "second": second["said"]},
        "learned": {ns: len(client.search_knowledge(namespace=ns, limit=100)["documents"])
                    for ns in ("handbook", "research", "lessons", "articles")},
        "second": {"research read": ", ".join(second["sources"]),
                   "writer applied": ", ".join(second["applied_lessons"]) or "-"},
        "summary": f"document.uploaded -> summarizer: {summary.status}",
        "logins": sorted({s["username"] for s in sessions}),
        "api_keys": {k.name: "used" if k.last_used_at else "never used" for k in keys},
        "articles_published": published,
        "agents": {a: _rate(client, a) for a in ("researcher", "writer", "reviewer")},
        "pool": f"size {pool['size']}, {pool['checked_out']} connection(s) in use",
        "ids": {"first": first, "second": second, "upload": upload.id,
                "summary": summary.id},
    }


def _article(ci: Client, editor: Client, topic: str, approve: bool) -> dict[str, Any]:
    """CI starts a run; the editor decides at its gate; the run's end, in short."""
    run = ci.start_run("publish-article", {"topic": topic})
    approval = wait_for(f"the approval of {topic!r}", lambda: _pending(editor, run["id"]),
                        timeout_s=RUN_TIMEOUT_S)
    if approve:
        editor.approve(approval["id"], "clear and sourced: ship it")
    else:
        editor.reject(approval["id"], "list the devices it applies to first")
    done = ci.wait_run(run["id"], timeout_s=RUN_TIMEOUT_S)
    steps = {s["id"]: s for s in done["steps"]}
    decision = "approved" if approve else "rejected"
    published = steps["publish"]["status"] == "succeeded"
    said = (f"run {done['status']}, {decision} by {EDITOR[0]} (review score "
            f"{steps['review']['output']['score']}), "
            + (f"published as {steps['publish']['output']['published']}" if published
               else f"publish {steps['publish']['status']}"))
    return {"run": run["id"], "status": done["status"], "said": said,
            "steps": {name: s["status"] for name, s in steps.items()},
            "applied_lessons": steps["write"]["output"]["applied_lessons"],
            "sources": steps["research"]["output"]["sources"],
            "lesson": steps["review"]["output"]["lesson"]}


def _pending(client: Client, run_id: str) -> dict[str, Any] | None:
    found = client.list_approvals(status="pending", run_id=run_id)["approvals"]
    return found[0] if found else None


def _ended(tasks: list[Task]) -> Task | None:
    done = [t for t in tasks if t.final]
    return done[0] if done else None


def _sum(client: Client, name: str) -> float | None:
    try:
        groups = client.query_metric(name, agg="sum")["groups"]
    except errors.NotFound:  # no sample of it flushed yet
        return None
    total = sum(point["value"] or 0 for group in groups for point in group["points"])
    return total or None


def _rate(client: Client, agent: str) -> str:
    summary = client.agent_summary(agent, window="1h")
    ok = summary["tasks"].get("succeeded", 0)
    return f"{ok} succeeded of {sum(summary['tasks'].values())}, " \
           f"{summary['tokens']['total']} tokens"


def _simulators() -> Simulators:
    from examples.simulators.llm import FakeLlm

    llm = FakeLlm().start()
    return Simulators(env={"AGENTOS_LLM_BASE_URL": llm.base_url}, handles={"llm": llm},
                      stops=[llm.stop])


EXAMPLE = Example(
    name="agent_platform", title="Agent platform store", seed="001",
    summary="ten default agents learning into the knowledge base, a research -> write -> "
            "review workflow with an approval, sessions, keys, metrics, backup",
    install=install, run=run, simulators=_simulators,
    dashboard=(("/workflow-runs", "two runs of publish-article as DAGs; the second's "
                                  "publish step skipped"),
               ("/approvals?status=", "the editor's two decisions with comments"),
               ("/knowledge?namespace=lessons", "what the reviews taught the writer"),
               ("/agents/researcher", "its state, config and recent tasks"),
               ("/llm", "tokens and cost by agent"),
               ("/api-keys", "ci-pipeline, and when it was last used")))
