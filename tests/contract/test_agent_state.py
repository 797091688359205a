"""An agent's live state (both backends): the workflow runs it is working for (a running
run with a task of the agent waiting or running); its status through disabled, busy,
error and idle; the locks its running task holds, also in its worker's state; the last
error."""

from __future__ import annotations

from agentos import agent_spec, agent_state, claims, consumers, locks, queue, registry
from agentos.store import Store
from agentos.tasks import Status
from agentos.worker import instances
from agentos.workflows import definitions, engine, runs
from tests.contract.test_handler_kinds import run, submit
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


async def test_status_held_locks_and_last_error(store: Store) -> None:
    # Given an agent with no published version: disabled
    await registry.create(store, agent_spec.from_object({
        "name": "draft", "version": "1.0.0",
        "handler": {"type": "python", "target": "tests.handlers:echo"}}), publish=False)
    assert (await agent_state.of_agent(store, "draft"))["status"] == "disabled"
    # Given a task of an agent claimed by worker w1, holding a lock for its attempt
    await agent(store, "holder", "echo")
    await instances.register(store, "w1", None, 4)
    task_id = await submit(store, "holder")
    [claimed] = await claims.claim(store, "w1", agents=["holder"])
    assert (await locks.acquire(store, "device:printer", locks.Claim(
        owner=locks.task_owner(task_id), task_id=task_id, agent="holder",
        attempt=claimed.attempt))).granted
    # Then the agent is busy and the lock shows in its state and in its worker's
    state = await agent_state.of_agent(store, "holder")
    assert state["status"] == "busy" and [t["id"] for t in state["running_tasks"]] == [task_id]
    assert [(h["resource"], h["task_id"], h["agent"]) for h in state["held_locks"]] == [
        ("device:printer", task_id, "holder")]
    worker = await agent_state.of_worker(store, "w1")
    assert [h["resource"] for h in worker["held_locks"]] == ["device:printer"]
    assert worker["running"] == 1 and worker["alive"]
    # Given an agent whose last task failed for good: error, naming the task and error
    await agent(store, "faulty", "broken")
    failed = await submit(store, "faulty", retryable=False)
    [done] = await run(store, failed)
    assert done.status is Status.FAILED
    state = await agent_state.of_agent(store, "faulty")
    assert state["status"] == "error" and state["held_locks"] == []
    assert state["last_error"]["task_id"] == failed
    assert "bad input" in str(state["last_error"]["error"])
    # and a success after it makes it idle again, the last error still shown
    [ok] = await run(store, await submit(store, "faulty", retryable=False))
    assert ok.status is Status.FAILED  # (the handler always fails: cancel one instead)
    later = await submit(store, "faulty")
    await queue.cancel(store, later)
    state = await agent_state.of_agent(store, "faulty")
    assert state["status"] == "idle" and state["last_error"]["task_id"] == ok.id
