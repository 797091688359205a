"""A task's explanation names the gate that holds it now, on both backends: not due,
retry backoff, no worker, its agent's concurrency, a resource held by someone else (and
its place in the queue), a budget hold, a lapsed lease, a cancel under way, a sub-task;
and for an ended task, why it ended."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentos import agent_spec, capabilities, claims, locks, queue, registry
from agentos.errors import NotFound
from agentos.explain import gates
from agentos.explain import task as task_explain
from agentos.store import Store
from agentos.store import agent_config as store_config
from agentos.tasks import Status, TaskIn
from agentos.worker import instances
from agentos.worker.loop import Worker


async def agent(store: Store, name: str, target: str = "echo", **fields: Any) -> None:
    limits = {"max_retries": 2, "backoff": {"initial_s": 60, "jitter": False},
              **fields.pop("limits", {})}
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
         "limits": limits, **fields}), publish=True)


async def submit(store: Store, name: str, **fields: Any) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=name, **fields)])
    return task.id


async def burst(store: Store, **kw: Any) -> None:
    await asyncio.wait_for(Worker(store, burst=True, concurrency=2, **kw).run(), 30)


def gate_of(found: dict[str, Any]) -> str | None:
    return found["gate"]


def finding(found: dict[str, Any], gate: str) -> dict[str, Any]:
    [match] = [f for f in found["findings"] if f["gate"] == gate]
    return match


async def test_unknown_task(store: Store) -> None:
    with pytest.raises(NotFound):
        await task_explain.explain(store, "no-such-task")


async def test_no_worker_then_ready_once_one_serves_it(store: Store) -> None:
    await agent(store, "echo")
    task_id = await submit(store, "echo")
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "no_worker"
    assert "no live worker serves agent echo" in found["summary"]
    # a worker for another agent does not count; one for every agent does
    await instances.register(store, "w-other", ["other"], 4)
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "no_worker"
    assert [w["id"] for w in finding(found, "no_worker")["details"]["workers"]] == ["w-other"]
    await instances.register(store, "w-all", None, 4)
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) is None
    assert found["summary"] == "ready: 0 task(s) ahead of it in claim order; live workers " \
                               "serving it: w-all"


async def test_tasks_ahead_in_claim_order(store: Store) -> None:
    await agent(store, "echo")
    await instances.register(store, "w", None, 4)
    urgent = [await submit(store, "echo", priority=9) for _ in range(3)]
    older = await submit(store, "echo", priority=5)
    mine = await submit(store, "echo", priority=5)
    await submit(store, "echo", priority=5)  # after it: not ahead
    found = await task_explain.explain(store, mine)
    assert finding(found, "queue")["details"]["ahead"] == len(urgent) + 1, older


async def test_run_at_later(store: Store) -> None:
    await agent(store, "echo")
    await instances.register(store, "w", None, 4)
    later = datetime.now(UTC) + timedelta(hours=2)
    found = await task_explain.explain(store, await submit(store, "echo", run_at=later))
    assert gate_of(found) == "not_due"
    assert finding(found, "not_due")["details"]["kind"] == "run_at"
    assert datetime.fromisoformat(found["until"]) == later
    assert "in 2.0 h" in found["summary"]


async def test_retry_backoff_names_the_failure(store: Store) -> None:
    await agent(store, "flaky", "flaky")
    task_id = await submit(store, "flaky", input={"fails": 5})
    await burst(store)  # attempt 1 fails; the retry is a minute away
    found = await task_explain.explain(store, task_id)
    assert found["status"] == "scheduled" and gate_of(found) == "not_due"
    assert finding(found, "not_due")["details"]["kind"] == "backoff"
    assert "retry backoff after attempt 1 failed (attempt 1 fails)" in found["summary"]


async def test_concurrency_full_names_the_running_tasks(store: Store) -> None:
    await agent(store, "capped", limits={"concurrency": 1})
    await instances.register(store, "w", None, 4)
    first = await submit(store, "capped")
    second = await submit(store, "capped")
    [claimed] = await claims.claim(store, "w", limit=2)
    assert claimed.id == first
    found = await task_explain.explain(store, second)
    assert gate_of(found) == "concurrency"
    details = finding(found, "concurrency")["details"]
    assert details["limit"] == 1 and details["running"] == 1
    assert [t["id"] for t in details["tasks"]] == [first]
    assert first in found["summary"]


async def test_resource_held_then_queued_with_its_place(store: Store) -> None:
    await agent(store, "dev", resources=["device:{input.device_id}"],
                permissions={"lock": ["device:*"]})
    got = await locks.acquire(store, "device:d1", locks.Claim("alice", ttl_s=120))
    assert got.granted
    task_id = await submit(store, "dev", input={"device_id": "d1"})
    await instances.register(store, "w", None, 4)
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "resource"
    assert found["summary"].startswith("waiting for device:d1, held by alice until ")
    assert "it joins when claimed" in found["summary"]
    await burst(store)  # claimed, could not get the device: handed back to its queue
    found = await task_explain.explain(store, task_id)
    assert found["status"] == "scheduled" and gate_of(found) == "resource"
    assert "it is number 1 of 1 in its queue" in found["summary"]
    assert finding(found, "not_due")["details"]["kind"] == "lock"
    [held] = finding(found, "resource")["details"]["resources"]
    assert held["holder"]["owner"] == "alice" and held["position"] == 1


async def test_budget_hold(store: Store) -> None:
    await agent(store, "spender")
    await instances.register(store, "w", None, 4)
    task_id = await submit(store, "spender")
    rolls = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    async with store.write() as conn:
        await store_config.hold(conn, "spender", "budget", "7", rolls, {
            "budget": 7, "metric": "tokens", "period": "day", "limit": 1000.0,
            "used": 1200.0, "rolls_at": rolls.isoformat()})
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "budget"
    assert "spent its hard budget 7 (1200 of 1000 tokens a day)" in found["summary"]
    assert datetime.fromisoformat(found["until"]) == rolls


async def test_lapsed_lease_and_cancel_request(store: Store) -> None:
    await agent(store, "echo")
    task_id = await submit(store, "echo")
    [claimed] = await claims.claim(store, "gone-worker", lease_s=0.05)
    found = await task_explain.explain(store, task_id)
    assert found["status"] == "running" and finding(found, "running")["blocking"] is False
    await asyncio.sleep(0.2)
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "lease" and "gone-worker stopped heartbeating" in found["summary"]
    await claims.heartbeat(store, task_id, claimed.attempt, lease_s=60)
    await queue.cancel(store, task_id)
    found = await task_explain.explain(store, task_id)
    assert gate_of(found) == "cancelling"


async def test_waits_for_a_sub_task(store: Store) -> None:
    await agent(store, "parent")
    await agent(store, "child")
    parent = await submit(store, "parent")
    [claimed] = await claims.claim(store, "w", agents=["parent"])
    child = await submit(store, "child", correlation_id=claimed.correlation_id,
                         causation_id=parent)
    found = await task_explain.explain(store, parent)
    assert gate_of(found) == "sub_task"
    assert f"sub-task {child} of agent child, pending" in found["summary"]


async def test_why_it_ended(store: Store) -> None:
    await agent(store, "echo")
    await agent(store, "broken", "broken")
    await agent(store, "flaky", "flaky", limits={"max_retries": 1,
                                                 "backoff": {"initial_s": 0.01}})
    ok = await submit(store, "echo")
    refused = await submit(store, "broken", input={"retryable": False})
    exhausted = await submit(store, "flaky", input={"fails": 9})
    cancelled = await submit(store, "echo", run_at=datetime.now(UTC) + timedelta(hours=1))
    await queue.cancel(store, cancelled)
    for _ in range(3):
        await burst(store)
        await asyncio.sleep(0.05)
    found = await task_explain.explain(store, ok)
    assert found["gate"] is None and found["summary"].startswith("succeeded on attempt 1")
    found = await task_explain.explain(store, refused)
    assert found["summary"] == ("failed for good: bad input; not retried: the error is not "
                                "retryable")
    found = await task_explain.explain(store, exhausted)
    assert found["status"] == "failed", found
    assert found["summary"] == ("failed for good: attempt 2 fails; no retries left "
                                "(2 attempt(s), max_retries 1)")
    assert [a["outcome"] for a in finding(found, "ended")["details"]["attempts"]] == [
        "failed", "failed"]
    # an operator's retry gives it a fresh set of retries: the count starts again there
    await queue.retry(store, exhausted)
    for _ in range(3):
        await burst(store)
        await asyncio.sleep(0.05)
    found = await task_explain.explain(store, exhausted)
    assert found["summary"] == ("failed for good: attempt 4 fails; no retries left "
                                "(2 attempt(s) since the retry after attempt 2, max_retries 1)")
    found = await task_explain.explain(store, cancelled)
    assert found["summary"].startswith("cancelled before it ran; no request names it")


async def test_another_concept_adds_a_gate(store: Store) -> None:
    """A gate registered from outside, with its own read in the same transaction."""
    await agent(store, "echo")
    await instances.register(store, "w", None, 4)
    task_id = await submit(store, "echo")

    async def read(conn: Any, task: Any) -> str:
        return f"quota of {task.agent}"

    def quota(facts: gates.Facts) -> gates.Finding | None:
        return gates.Finding("quota", f"held by the {facts.extra['quota']}")

    gates.register("quota", quota, statuses=gates.WAITING, order=1, read=read)
    try:
        found = await task_explain.explain(store, task_id)
    finally:
        gates._GATES.pop("quota")
    assert gate_of(found) == "quota" and found["summary"] == "held by the quota of echo"
    assert (await task_explain.explain(store, task_id))["gate"] is None
    assert (await queue.get(store, task_id)).status is Status.PENDING


async def test_a_switched_off_capability_holds_the_tasks_that_need_it(store: Store) -> None:
    await agent(store, "searcher", capabilities=[{"name": "search"}, {"name": "index"}])
    await instances.register(store, "w", None, 4)
    needs = await submit(store, "searcher", capability="search")
    plain = await submit(store, "searcher")
    await capabilities.switch(store, "searcher", "search", enabled=False,
                              reason="index rebuild", by="user:ana")
    found = await task_explain.explain(store, needs)
    assert gate_of(found) == "capability"
    assert found["summary"] == ("held: it needs capability search of agent searcher, switched "
                                "off by user:ana (index rebuild); it runs once the capability "
                                "is enabled again")
    found = await task_explain.explain(store, plain)
    assert gate_of(found) is None
    assert finding(found, "capability")["blocking"] is False
    await capabilities.switch(store, "searcher", "search", enabled=True, reason="",
                              by="user:ana")
    assert (await task_explain.explain(store, needs))["gate"] is None
