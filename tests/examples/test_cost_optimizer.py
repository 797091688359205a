"""cost_optimizer (seed 004) end to end: a real server and worker, both backends."""

from __future__ import annotations

from collections.abc import Callable

from examples.cost_optimizer.scenario import REJECTION
from tests.examples.conftest import Running

AUTO = "applied: auto: under the approval threshold"


def test_cost_optimizer(run_example: Callable[..., Running]) -> None:
    example = run_example("cost_optimizer")
    outcome = example.run()
    api = example.client

    # typed thresholds: the lead's value is live, values outside the declaration refused
    assert {k: v.split(":")[0] for k, v in outcome["refused"].items()} == {
        "idle_cpu_pct": "bad_config_value", "lookback_days": "bad_config_value"}
    assert "at most 100" in outcome["refused"]["idle_cpu_pct"]
    config = {c["key"]: c for c in api.agent_config("cost-agent-1")["config"]}
    assert config["idle_cpu_pct"]["value"] == 10.0 and config["idle_cpu_pct"]["overridden"]
    assert config["excluded_tags"]["value"] == {"keep": "true"}  # vm-a5 left alone

    # versioned capabilities switched at run time: the analyses needing rightsizing
    # waited while it was off (the explain gate says so, the agent's state lists the
    # hold), and ran once it was on
    assert outcome["held_while_off"] == dict.fromkeys(["acme-corp", "globex"],
                                                       "pending, gate capability")
    assert outcome["state_held"] == ["capability:rightsizing"]
    caps = {c["name"]: c for c in api.capabilities("cost-agent-1")["capabilities"]}
    assert {n: (c["version"], c["enabled"]) for n, c in caps.items()} == {
        "idle-detection": ("1", True), "rightsizing": ("2", True)}
    assert {api.get_task(t)["status"] for t in outcome["ids"]["analyses"]} == {"succeeded"}

    # recommendations by the thresholds: vm-a4 (7 % CPU) is idle only under the lead's
    # 10 %, vm-a5 is excluded by its tag, vm-a3/g3/i2 are busy enough
    assert outcome["recommendations"] == [
        "acme-corp:vm-a1:stop", "acme-corp:vm-a2:resize", "acme-corp:vm-a4:stop",
        "globex:db-g2:resize", "globex:vm-g1:resize", "initech:vm-i1:stop"]

    # the two above 300 USD a month waited for an operator (the optimizer busy with
    # both meanwhile); one approved and applied, one rejected, recorded and not applied
    assert outcome["optimizer_while_waiting"] == {"status": "busy", "running": 2}
    assert outcome["decisions"] == {"acme-corp:vm-a2:resize": "approved",
                                    "globex:db-g2:resize": "rejected"}
    assert outcome["optimizations"] == {
        "acme-corp:vm-a1:stop": AUTO, "acme-corp:vm-a2:resize": "applied: user:finops-lead",
        "acme-corp:vm-a4:stop": AUTO, "globex:vm-g1:resize": AUTO,
        "globex:db-g2:resize": "rejected by user:finops-lead", "initech:vm-i1:stop": AUTO}
    assert sorted(outcome["cloud_actions"]) == [
        "acme-corp vm-a1 stop", "acme-corp vm-a2 resize m5.4xlarge", "acme-corp vm-a4 stop",
        "globex vm-g1 resize m5.2xlarge", "initech vm-i1 stop"]
    [rejected] = api.list_events(type="optimization.rejected")["events"]
    assert rejected["payload"]["recommendation_id"] == "globex:db-g2:resize"
    assert (rejected["payload"]["by"], rejected["payload"]["comment"]) == (
        "user:finops-lead", REJECTION)
    assert len(api.list_events(type="optimization.applied")["events"]) == 5
    approvals = {a["details"]["recommendation_id"]: a for a in
                 api.list_approvals()["approvals"]}
    assert {k: (a["status"], a["decided_by"]) for k, a in approvals.items()} == {
        "acme-corp:vm-a2:resize": ("approved", "user:finops-lead"),
        "globex:db-g2:resize": ("rejected", "user:finops-lead")}
    decided = api.audit(actor="user:finops-lead", action="approvals.reject")["entries"]
    assert [e["resource_id"] for e in decided] == [approvals["globex:db-g2:resize"]["id"]]

    # metrics tagged per customer
    assert outcome["recommendations_by_customer"] == {"acme-corp": 3, "globex": 2,
                                                      "initech": 1}
    assert outcome["savings_realized_usd"] == {"acme-corp": 280 + 560 + 70, "globex": 280,
                                               "initech": 140}

    # deleting the retired agent took its config, capabilities, holds, state and metric
    # series; its tasks, events and audit rows stay, and the audit chain is intact
    retired = outcome["retired"]
    assert retired["before"]["metric_series"] >= 1
    removed = retired["removed"]
    assert (removed["versions"], removed["config"], removed["capabilities"]) == (1, 2, 1)
    assert removed["metric_series"] >= 3  # resources.analyzed, recommendations, savings
    assert retired["after"] == {"config": "agent_not_found", "capabilities": "agent_not_found",
                                "state": "agent_not_found", "agent": "agent_not_found",
                                "metric_series": 0}
    assert retired["kept"]["events"] == 1  # its recommendation for initech
    assert retired["kept"]["audit"] == ["agents.capability_disable", "agents.config_set",
                                        "agents.delete_agent"]
    [deleted] = api.list_events(type="agent.deleted")["events"]
    assert deleted["payload"]["agent"] == "cost-agent-2"
    changed = [e for e in api.iter_events(type="agent.*")
               if e["payload"].get("agent") == "cost-agent-2"]
    assert [e["type"] for e in changed] == ["agent.config_changed", "agent.config_changed",
                                            "agent.capability_disabled", "agent.deleted"]
    [analysis] = api.list_tasks(agent="cost-agent-2")["tasks"]
    assert analysis["status"] == "succeeded"
    assert api.verify_audit()["intact"] is True
