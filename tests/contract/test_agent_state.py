"""An agent's live state counts the workflow runs it is working for: a running run with
a task of the agent waiting or running (both backends)."""

from __future__ import annotations

from agentos import agent_state, consumers
from agentos.store import Store
from agentos.workflows import definitions, engine, runs
from tests.contract.test_workflows import agent

FLOW = """
name: slow-flow
version: 1.0.0
steps:
  - id: wait
    agent: sleeper
    input: {seconds: 30}
"""


async def test_state_lists_the_active_runs_of_an_agent(store: Store) -> None:
    await agent(store, "sleeper", "slow")
    await agent(store, "bystander", "echo")
    await definitions.import_yaml(store, FLOW, publish=True)
    run, _ = await runs.start(store, runs.StartIn("slow-flow", input={}), by="test")
    await consumers.catch_up(store, engine.consumer(store))
    await engine.tick(store)
    state = await agent_state.of_agent(store, "sleeper")
    assert [r["id"] for r in state["workflow_runs"]] == [run["id"]]
    assert state["workflow_runs"][0]["workflow"] == "slow-flow"
    assert state["status"] == "waiting" and state["queue_depth"] == 1
    assert (await agent_state.of_agent(store, "bystander"))["workflow_runs"] == []
    await runs.cancel(store, run["id"])
    await consumers.catch_up(store, engine.consumer(store))
    await engine.tick(store)
    assert (await agent_state.of_agent(store, "sleeper"))["workflow_runs"] == []
