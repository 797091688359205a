"""business_os (seed 002) end to end: a real server and worker, both backends."""

from __future__ import annotations

from collections.abc import Callable

from tests.examples.conftest import Running


def test_business_os(run_example: Callable[..., Running]) -> None:
    example = run_example("business_os")
    outcome = example.run()
    api, ids = example.client, outcome["ids"]

    # agents name their model's provider and name
    assert api.get_agent("support-triage")["definition"]["model"] == {
        "provider": "openai", "name": "gpt-4o-mini", "params": {"temperature": 0}}

    # six segments, due together, scored one at a time, most urgent first, by the model
    # deployed then; each task keeps its type and the ops lead's labels
    assert [p for _, p in outcome["segments_in_order"]] == [10, 9, 7, 5, 3, 1]
    segments = [api.get_task(t) for t in ids["segments"]]
    assert {t.status for t in segments} == {"succeeded"}
    assert {(t.output or {})["model"] for t in segments} == {"churn@1.0.0"}
    assert {(t.type, (t.metadata or {})["requested_by"]) for t in segments} == {
        ("analyze", "ops-lead")}
    analyze = api.list_tasks(type="analyze", limit=100).tasks
    assert sorted(t.id for t in analyze) == sorted([*ids["segments"], ids["rescore"]])

    # the model registry: 1.1.0 replaced 1.0.0, and the next scoring used it
    assert outcome["models"] == {"1.0.0": "archived", "1.1.0": "deployed"}
    assert outcome["rescored_with"] == "churn@1.1.0"
    rescore = api.get_task(ids["rescore"]).output or {}
    first = next(t.output or {} for t in segments if t.input["segment"] == "enterprise")
    assert rescore["scores"] != first["scores"]  # other weights, other risks

    # retries and timeouts: INV-2003 booked on its third try after two 503s; INV-2004
    # timed out three times (2 s each) and was dead-lettered; nothing booked twice
    invoices = {t.input["invoice"]: t for t in map(api.get_task, ids["invoices"])}
    flaky, hanging = invoices["INV-2003"], invoices["INV-2004"]
    assert flaky.status == "succeeded" and len(flaky.attempts) == 3
    assert [a.outcome for a in flaky.attempts[:2]] == ["failed", "failed"]
    assert "503" in (flaky.attempts[0].error or {})["message"]
    assert hanging.status == "failed"
    assert [a.outcome for a in hanging.attempts] == ["timeout"] * 3
    assert [t.status for t in api.list_tasks(status="failed").tasks] == ["failed"]
    erp = example.sims.handles["erp"]
    assert sorted(erp.booked) == ["INV-2001", "INV-2002", "INV-2003"]
    assert erp.requests == {"INV-2001": 1, "INV-2002": 1, "INV-2003": 3, "INV-2004": 3}

    # tickets routed from their events to the LLM triage, each a recorded call of its model
    assert outcome["tickets_triaged"] == 3
    calls = {c["key"]: c for c in api.llm_summary(by="model")["rows"]}
    assert calls["gpt-4o-mini"]["calls"] == 3 and calls["gpt-4o"]["calls"] == 1
    # executions with tokens and duration
    report = api.get_task(ids["summary"])
    [attempt] = report.attempts
    assert attempt.tokens == {"prompt": 12, "completion": 5, "total": 17}
    assert (attempt.duration_ms or 0) > 0 and (attempt.cost or 0) > 0
    assert api.agent_summary("support-triage")["tokens"]["total"] == 3 * 17

    # roles and the audit log: the ops lead's submissions are hers, the auditor read and
    # was refused, the model changes are the admin's, and the chain is intact
    assert outcome["auditor"].startswith("read ")
    assert "needs the operator role" in outcome["auditor"]
    mine = api.audit(actor="user:ops-lead")["entries"]  # newest first
    assert [e["action"] for e in reversed(mine)] == [
        "auth.login", "tasks.submit", "events.emit", "events.emit", "events.emit",
        "tasks.submit"]
    assert {e["outcome"] for e in mine} == {"ok"}
    registered = api.audit(action="models.register")["entries"]
    assert [(e["actor"], e["resource_id"]) for e in reversed(registered)] == [
        ("user:admin", "churn@1.0.0"), ("user:admin", "churn@1.1.0")]
    made = {e["resource_id"] for e in api.audit(action="users.create")["entries"]}
    assert made >= {"ops-lead", "auditor"}
    [erp_url] = api.audit(action="agents.config_set")["entries"]
    assert erp_url["resource_id"] == "billing-sync/erp_url"
    refused = api.audit(actor="user:auditor", outcome="denied")["entries"]
    assert [e["action"] for e in refused] == ["tasks.submit"]
    deploys = api.audit(action="models.deploy")["entries"]
    assert [e["resource_id"] for e in reversed(deploys)] == ["churn@1.0.0", "churn@1.1.0"]
    assert api.verify_audit()["intact"] is True

    # the cache served most reads of the agents
    assert outcome["cache_hit_rate"] >= 0.5
