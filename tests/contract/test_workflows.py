"""Workflow runs on both backends, driven by real workers and the engine's consumer:
linear runs, fan-out, conditions, failures, cancel, rerun, approvals, waits for
events, sub-workflows, artifacts."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from agentos import agent_spec, approvals, consumers, events, queue, registry, router
from agentos.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from agentos.roles import Role
from agentos.store import Store
from agentos.store import workflows as store_workflows
from agentos.tasks import Status, TaskIn
from agentos.worker.loop import Worker
from agentos.workflows import definitions, engine, runs, waits

pytestmark = pytest.mark.timeout(120)


async def agent(store: Store, name: str, target: str, **limits: Any) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
         "limits": {"backoff": {"initial_s": 0.05, "max_s": 0.1, "jitter": False},
                    **limits}}), publish=True)


async def workflow(store: Store, text: str) -> None:
    await definitions.import_yaml(store, text, publish=True)


def ended(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed", "cancelled")


async def drive(store: Store, run_id: str, until: Any = ended, rounds: int = 80
                ) -> dict[str, Any]:
    """Run burst workers and the engine until ``until(run)`` holds (the run ended)."""
    consumer = engine.consumer(store)
    for _ in range(rounds):
        for work in ("engine", "workers"):
            if work == "workers":
                await asyncio.wait_for(Worker(store, burst=True, concurrency=8).run(), 30)
            await consumers.catch_up(store, consumer)
            await engine.tick(store)
            run = await runs.get(store, run_id)
            if until(run):
                return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not get there: {run['status']}")


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


async def start(store: Store, name: str, input: Any = None, **kw: Any) -> dict[str, Any]:
    found, _ = await runs.start(store, runs.StartIn(name, input=input or {}, **kw), by="test")
    return found


LINEAR = """
name: linear
version: 1.0.0
input_schema: {type: object, required: [n], properties: {n: {type: integer}}}
steps:
  - id: a
    agent: doubler
    input: {n: "{{ input.n }}"}
  - id: b
    agent: doubler
    input: {n: "{{ steps.a.output.n }}"}
    depends_on: [a]
  - id: c
    agent: doubler
    input: {n: "{{ steps.b.output.n + 1 }}", note: "from {{ run.workflow }}"}
    depends_on: [b]
"""


async def test_linear_run_passes_outputs_along(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    run = await start(store, "linear", {"n": 3})
    assert run["status"] == "running" and step(run, "a")["status"] == "running"
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    assert step(done, "a")["output"]["n"] == 6 and step(done, "b")["output"]["n"] == 12
    assert step(done, "c")["output"] == {"n": 26, "input": {"n": 13, "note": "from linear"}}
    assert done["output"] == {"c": step(done, "c")["output"]}
    # every step's task, its attempt, and the whole history
    [task] = step(done, "b")["tasks"]
    assert task["task_status"] == "succeeded" and task["attempts"][0]["outcome"] == "succeeded"
    moves = [(m["step"], m["from"], m["to"]) for m in done["transitions"]]
    assert moves[0] == (None, None, "running") and moves[-1] == (None, "running", "succeeded")
    assert ("b", "pending", "running") in moves and ("b", "running", "succeeded") in moves
    # its tasks and events carry its correlation; the events are the documented ones
    page, _ = await events.query(store, events.Query(correlation_id=done["correlation_id"],
                                                     limit=1000))
    types = [e.type for e in page]
    assert types.count("workflow.step.started") == 3 and "workflow.succeeded" in types
    assert types.count("task.succeeded") == 3
    tree = await events.correlation(store, done["correlation_id"])
    assert [n["kind"] for n in tree] == ["run"]


async def test_input_schema_and_runnable_version_are_checked(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    with pytest.raises(ValidationFailed) as bad:
        await start(store, "linear", {"n": "three"})
    assert bad.value.details["errors"][0]["path"] == "input.n"
    with pytest.raises(NotFound):
        await start(store, "nonesuch")
    await definitions.change_status(store, "linear", "1.0.0", "deprecate")
    with pytest.raises(Conflict):
        await start(store, "linear", {"n": 1})
    page, _ = await runs.page(store)
    assert page == []


async def test_concurrent_starts_with_one_key_return_one_run(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight starts with one idempotency key at once: each gets the same run, and one
    says it is new. (On PostgreSQL, without the key's lock, all read no earlier run and
    all but one failed 409 on the unique index.)"""
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    original = store_workflows.run_by_key

    async def slow_read(conn: Any, key: str) -> Any:
        found = await original(conn, key)
        await asyncio.sleep(0.05)  # widen the window between the read and the insert
        return found

    monkeypatch.setattr(store_workflows, "run_by_key", slow_read)
    answers = await asyncio.gather(*(runs.start(store, runs.StartIn(
        "linear", input={"n": 1}, idempotency_key="once"), by="test") for _ in range(8)))
    assert len({run["id"] for run, _ in answers}) == 1
    assert sorted(new for _, new in answers) == [False] * 7 + [True]
    page, _ = await runs.page(store)
    assert len(page) == 1


FAN_OUT = """
name: fan
version: 1.0.0
steps:
  - id: plan
    agent: planner
    input: {devices: "{{ input.devices }}"}
  - id: explore
    agent: doubler
    for_each: "{{ steps.plan.output.targets }}"
    max_parallel: 2
    input: {device: "{{ item.device_id }}", fail: "{{ item.device_id == input.bad }}"}
    continue_on_error: {coe}
    depends_on: [plan]
  - id: report
    agent: doubler
    when: "{{ steps.explore.output | length > 0 }}"
    input: {n: "{{ steps.explore.output | length }}"}
    depends_on: [explore]
"""


async def test_fan_out_keeps_item_order_and_max_parallel(store: Store) -> None:
    await agent(store, "planner", "wf_plan")
    await agent(store, "doubler", "wf_double")
    await workflow(store, FAN_OUT.replace("{coe}", "false"))
    devices = [f"d{i}" for i in range(7)]
    run = await start(store, "fan", {"devices": devices, "bad": "none"})
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded", done
    explore = step(done, "explore")
    assert [o["input"]["device"] for o in explore["output"]] == devices
    assert explore["items"] == {"total": 7, "started": 7, "ended": 7, "failed": 0}
    assert step(done, "report")["output"]["n"] == 14
    # never more than two children at once: each was submitted when one ended
    tasks = sorted(explore["tasks"], key=lambda t: t["item"])
    assert len(tasks) == 7


async def test_a_child_s_end_does_not_rewrite_the_fan_out_s_items(store: Store) -> None:
    """A fan-out's items are written once, when its step starts; each child's end
    updates only the step's counts (it used to write every item again, so a fan-out
    of n children wrote n times n items) and reads no items unless it starts more
    children."""
    await agent(store, "planner", "wf_plan")
    await agent(store, "doubler", "wf_double")
    await workflow(store, FAN_OUT.replace("{coe}", "false"))
    updates: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE WORKFLOW_STEPS"):
            updates.append(statement)

    engine_ = getattr(store.engine, "sync_engine", store.engine)
    sa_event.listen(engine_, "before_cursor_execute", seen)
    try:
        run = await start(store, "fan", {"devices": [f"d{i}" for i in range(7)],
                                         "bad": "none"})
        done = await drive(store, run["id"])
    finally:
        sa_event.remove(engine_, "before_cursor_execute", seen)
    assert done["status"] == "succeeded"
    assert step(done, "explore")["items"] == {"total": 7, "started": 7, "ended": 7,
                                              "failed": 0}
    writing_items = [u for u in updates if re.search(r"\bitems\s*=", u)]
    assert len(writing_items) == 1 and len(updates) >= 4, updates


async def test_one_failed_child_fails_the_step_unless_continue_on_error(store: Store) -> None:
    await agent(store, "planner", "wf_plan")
    await agent(store, "doubler", "wf_double")
    await workflow(store, FAN_OUT.replace("{coe}", "false"))
    run = await start(store, "fan", {"devices": ["a", "b", "c"], "bad": "b"})
    done = await drive(store, run["id"])
    assert done["status"] == "failed"
    assert step(done, "explore")["status"] == "failed"
    assert step(done, "report")["status"] == "pending"
    assert "explore" in done["error"]["message"]

    await workflow(store, FAN_OUT.replace("{coe}", "true").replace("1.0.0", "1.1.0"))
    run = await start(store, "fan", {"devices": ["a", "b", "c"], "bad": "b"})
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    outputs = step(done, "explore")["output"]
    assert outputs[1] is None and outputs[0]["input"]["device"] == "a"


async def test_empty_fan_out_succeeds_and_false_condition_skips(store: Store) -> None:
    await agent(store, "planner", "wf_plan")
    await agent(store, "doubler", "wf_double")
    await workflow(store, FAN_OUT.replace("{coe}", "false"))
    run = await start(store, "fan", {"devices": [], "bad": "x"})
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    assert step(done, "explore")["output"] == []
    assert step(done, "report")["status"] == "skipped"


async def test_a_step_failing_as_it_starts_holds_its_siblings(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, """
name: bad-items
version: 1.0.0
steps:
  - id: a
    agent: doubler
    for_each: "{{ input.items }}"
  - id: b
    agent: doubler
  - id: c
    agent: doubler
""")
    run = await start(store, "bad-items", {"items": "not a list"})
    assert run["status"] == "failed"
    assert "for_each gave str" in step(run, "a")["error"]["message"]
    assert [step(run, s)["status"] for s in ("b", "c")] == ["pending", "pending"]


async def test_failed_step_then_rerun_keeps_earlier_outputs(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, """
name: flaky-chain
version: 1.0.0
steps:
  - id: first
    agent: doubler
    input: {n: 5}
  - id: second
    agent: doubler
    input: {n: "{{ steps.first.output.n }}", fail: "{{ input.fail }}"}
    depends_on: [first]
""")
    run = await start(store, "flaky-chain", {"fail": True})
    done = await drive(store, run["id"])
    assert done["status"] == "failed" and step(done, "second")["status"] == "failed"
    first_task = step(done, "first")["tasks"][0]["task_id"]
    with pytest.raises(Conflict):  # a step that did not fail
        await runs.rerun(store, run["id"], "first")
    with pytest.raises(NotFound):
        await runs.rerun(store, run["id"], "nonesuch")
    # make the step pass this time: the agent's new version no longer fails
    await registry.create(store, agent_spec.from_object(
        {"name": "doubler", "version": "1.1.0",
         "handler": {"type": "python", "target": "tests.handlers:wf_double"}}), publish=True)
    await registry.change_status(store, "doubler", "1.0.0", "deprecate")
    # the input still says fail: rerun fails again, with round 2
    again = await runs.rerun(store, run["id"], "second")
    assert again["status"] == "running" and step(again, "second")["round"] == 2
    done = await drive(store, run["id"])
    assert done["status"] == "failed"
    assert step(done, "first")["tasks"][0]["task_id"] == first_task  # not run again
    assert len(step(done, "second")["tasks"]) == 2
    with pytest.raises(Conflict):  # cancel of an ended run
        await runs.cancel(store, run["id"])


async def test_cancel_cancels_running_tasks(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    run = await start(store, "linear", {"n": 1})
    cancelled = await runs.cancel(store, run["id"])
    assert cancelled["status"] == "cancelled"
    assert step(cancelled, "a")["status"] == "cancelled"
    task = await queue.get(store, step(cancelled, "a")["tasks"][0]["task_id"])
    assert task.status is Status.CANCELLED
    with pytest.raises(Conflict):
        await runs.cancel(store, run["id"])


APPROVAL = """
name: gated
version: 1.0.0
steps:
  - id: plan
    agent: doubler
    input: {n: 1}
  - id: approve
    type: approval
    title: "run plan {{ steps.plan.output.n }}?"
    role: admin
    timeout_s: {timeout}
    on_timeout: {on_timeout}
    depends_on: [plan]
  - id: execute
    agent: doubler
    when: "{{ steps.approve.output.approved }}"
    input: {n: 10}
    depends_on: [approve]
"""


async def test_approval_gate_role_one_decision_and_output(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, APPROVAL.replace("{timeout}", "86400").replace("{on_timeout}", "reject"))
    run = await start(store, "gated")
    waiting = await drive(store, run["id"],
                          lambda r: step(r, "approve")["status"] == "running")
    approval_id = step(waiting, "approve")["approval_id"]
    [pending], _ = await approvals.page(store, status=approvals.Status.PENDING)
    assert pending.id == approval_id and pending.title == "run plan 2?"
    explained = await runs.explain(store, run["id"])
    assert explained["waiting"][0]["approval"]["role"] == "admin"
    with pytest.raises(Forbidden):
        await approvals.decide(store, approval_id, True, None, actor="user:op",
                               role=Role.OPERATOR)
    decided = await approvals.decide(store, approval_id, True, "looks good", actor="user:boss",
                                     role=Role.ADMIN)
    assert decided.status is approvals.Status.APPROVED
    with pytest.raises(Conflict):
        await approvals.decide(store, approval_id, False, None, actor="user:boss",
                               role=Role.ADMIN)
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    said = step(done, "approve")["output"]
    assert said["approved"] is True and said["by"] == "user:boss"
    assert said["comment"] == "looks good" and said["at"]
    assert step(done, "execute")["output"]["n"] == 20


async def test_approval_timeout_rejects_and_skips(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, APPROVAL.replace("{timeout}", "0.3").replace("{on_timeout}", "reject"))
    run = await start(store, "gated")
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    assert step(done, "approve")["output"]["approved"] is False
    assert step(done, "execute")["status"] == "skipped"
    found = await approvals.get(store, step(done, "approve")["approval_id"])
    assert found.status is approvals.Status.EXPIRED
    with pytest.raises(Conflict):  # deciding an expired approval
        await approvals.decide(store, found.id, True, None, actor="user:a", role=Role.ADMIN)


async def test_an_approval_past_its_timeout_cannot_be_decided(store: Store) -> None:
    found = await approvals.request(store, approvals.Request(
        "deploy?", {}, Role.OPERATOR, 0.2, "reject", "corr-1"))
    await asyncio.sleep(0.5)  # its timeout passed; the timer has not looked yet
    before, _ = await events.query(store, events.Query(correlation_id="corr-1"))
    for approve in (True, False):
        with pytest.raises(Conflict) as late:
            await approvals.decide(store, found.id, approve, "too late", actor="user:a",
                                   role=Role.ADMIN)
        assert late.value.code == "approval_expired"
    # nothing written: still pending (for the timer to expire), no decision event
    assert (await approvals.get(store, found.id)).status is approvals.Status.PENDING
    assert (await events.query(store, events.Query(correlation_id="corr-1")))[0] == before
    assert await approvals.expire_due(store) == 1
    expired = await approvals.get(store, found.id)
    assert expired.status is approvals.Status.EXPIRED and expired.decided_by == "timeout"
    with pytest.raises(Conflict) as late:
        await approvals.decide(store, found.id, True, None, actor="user:a", role=Role.ADMIN)
    assert late.value.code == "approval_expired"
    # one without a timeout, or not past it, is decided as before
    kept = await approvals.request(store, approvals.Request(
        "keep?", {}, Role.OPERATOR, 60, "reject", "corr-2"))
    assert (await approvals.decide(store, kept.id, True, None, actor="user:a",
                                   role=Role.OPERATOR)).status is approvals.Status.APPROVED


async def test_the_timer_expires_many_approvals_in_one_statement(store: Store) -> None:
    asked = [await approvals.request(store, approvals.Request(
        f"a{i}", {}, Role.OPERATOR, 0.1 if i < 5 else 60, "approve", f"corr-{i}"))
        for i in range(7)]
    await asyncio.sleep(0.3)
    assert await approvals.expire_due(store) == 5
    assert await approvals.expire_due(store) == 0
    page, _ = await approvals.page(store, status=approvals.Status.EXPIRED)
    assert {a.id for a in page} == {a.id for a in asked[:5]}
    expired, _ = await events.query(store, events.Query(type="approval.expired"))
    assert sorted(e.payload["approval_id"] for e in expired) == sorted(a.id for a in asked[:5])


WAIT = """
name: waiter
version: 1.0.0
steps:
  - id: ready
    type: wait_event
    event: "device.*"
    filter: {device_id: "{{ input.device }}"}
    timeout_s: {timeout}
  - id: use
    agent: doubler
    input: {n: "{{ steps.ready.output.payload.level }}"}
    depends_on: [ready]
"""


async def test_wait_event_matches_type_and_filter(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "60"))
    await events.append(store, [events.EventIn(type="device.ready",
                                               payload={"device_id": "p7", "level": 1})])
    run = await start(store, "waiter", {"device": "p7"})
    await drive(store, run["id"], lambda r: step(r, "ready")["status"] == "running")
    await events.append(store, [
        events.EventIn(type="device.ready", payload={"device_id": "p8", "level": 2}),
        events.EventIn(type="other.ready", payload={"device_id": "p7", "level": 3}),
        events.EventIn(type="device.ready", payload={"device_id": "p7", "level": 4}),
        events.EventIn(type="device.ready", payload={"device_id": "p7", "level": 5})])
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    assert step(done, "ready")["output"]["payload"]["level"] == 4
    assert step(done, "use")["output"]["n"] == 8


async def test_an_event_committed_while_a_wait_is_armed_is_not_missed(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The awaited event commits, and the engine's consumer tries to read it, while the
    start that arms the wait is still open: the wait still gets it. (On PostgreSQL the
    consumer used to read the event before the wait was there, then the wait armed
    after it waited for a later one until its timeout.)"""
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "3"))
    original = store_workflows.insert_waits
    racing: list[asyncio.Task[int]] = []

    async def emit_and_read() -> int:
        await events.append(store, [events.EventIn(
            type="device.ready", payload={"device_id": "p7", "level": 4})])
        return await consumers.catch_up(store, engine.consumer(store))

    async def insert_then_race(conn: Any, rows: list[dict[str, Any]]) -> None:
        await original(conn, rows)
        if rows and not racing:  # another client emits, the engine reads meanwhile
            racing.append(asyncio.create_task(emit_and_read()))
            await asyncio.sleep(0.5)

    monkeypatch.setattr(store_workflows, "insert_waits", insert_then_race)
    run = await start(store, "waiter", {"device": "p7"})
    monkeypatch.setattr(store_workflows, "insert_waits", original)
    await asyncio.wait_for(racing[0], 10)
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded", step(done, "ready")
    assert step(done, "ready")["output"]["payload"]["level"] == 4


async def _many_waits(store: Store, filter_of: Any) -> tuple[str, consumers.Consumer]:
    """The waiter's run for device p7, 5,000 more waits of its type whose filters
    ``filter_of(i)`` match none of the events, 3,000 of another type, then 300 events
    for no wait and the one p7's wait takes; the engine's consumer, caught up to before
    the waits."""
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "60"))
    run = await start(store, "waiter", {"device": "p7"})
    consumer = engine.consumer(store)
    await consumers.catch_up(store, consumer)
    async with store.write() as conn:
        await store_workflows.insert_waits(conn, [
            {"run_id": run["id"], "step": f"other{i}", "event_glob": "device.*",
             "filter": filter_of(i), "after_seq": 0, "expires_at": None}
            for i in range(5000)] + [
            {"run_id": run["id"], "step": f"else{i}", "event_glob": "else.*",
             "filter": {}, "after_seq": 0, "expires_at": None} for i in range(3000)])
    await events.append(store, [events.EventIn(type="device.ready",
                                               payload={"device_id": "none", "level": 0})
                                for _ in range(300)] + [
        events.EventIn(type="device.ready", payload={"device_id": "p7", "level": 4})])
    return run["id"], consumer


async def test_waits_for_one_value_are_looked_up(store: Store,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 waits of one type, each for another device, and 301 events of that type:
    the waits' values are looked up in an index of the events, not each filter tried
    on each event (1,500,000 filters: seconds of the event loop), and the one matching
    event ends its wait."""
    run_id, consumer = await _many_waits(store, lambda i: {"device_id": f"d{i}"})
    tried = 0
    mismatch = router.mismatch

    def counted(*args: Any) -> str | None:
        nonlocal tried
        tried += 1
        return mismatch(*args)

    monkeypatch.setattr(router, "mismatch", counted)
    await consumers.catch_up(store, consumer)
    assert tried < 100, f"{tried} filters tried"
    found = await drive(store, run_id, lambda r: step(r, "ready")["status"] != "running")
    assert step(found, "ready")["output"]["payload"]["level"] == 4


async def test_matching_many_waits_keeps_the_event_loop_responsive(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 waits whose filters are tried event by event (a value one of a list), and
    301 events of their type: matching gives way to the event loop (it held it for the
    1,500,000 filters tried: 2 s on SQLite, 20 s on PostgreSQL at load 15), and the
    one matching event still ends its wait. The loop's turns while matching are
    counted, not timed."""
    run_id, consumer = await _many_waits(
        store, lambda i: {"device_id": [f"d{i}", f"e{i}"]})
    matching = False
    turns = 0
    first_matches = waits.first_matches

    async def watched(*args: Any) -> Any:
        nonlocal matching
        matching = True
        try:
            return await first_matches(*args)
        finally:
            matching = False

    monkeypatch.setattr(waits, "first_matches", watched)
    done = asyncio.Event()

    async def turn() -> None:
        nonlocal turns
        while not done.is_set():
            await asyncio.sleep(0)
            turns += matching

    turning = asyncio.create_task(turn())
    try:
        await consumers.catch_up(store, consumer)
    finally:
        done.set()
        await turning
    assert turns >= 1000, f"the event loop turned {turns} times while matching"
    found = await drive(store, run_id, lambda r: step(r, "ready")["status"] != "running")
    assert step(found, "ready")["output"]["payload"]["level"] == 4


async def test_wait_event_timeout_fails_the_step(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "0.3"))
    run = await start(store, "waiter", {"device": "p7"})
    done = await drive(store, run["id"])
    assert done["status"] == "failed"
    assert step(done, "ready")["error"]["type"] == "timeout"


async def test_sub_workflow_runs_and_gives_its_output(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    await workflow(store, """
name: parent
version: 1.0.0
steps:
  - id: child
    type: workflow
    workflow: linear
    input: {n: "{{ input.n }}"}
  - id: after
    agent: doubler
    input: {n: "{{ steps.child.output.c.n }}"}
    depends_on: [child]
""")
    run = await start(store, "parent", {"n": 1})
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded", done
    child = await runs.get(store, step(done, "child")["sub_run_id"])
    assert child["status"] == "succeeded" and child["parent_run_id"] == run["id"]
    assert child["correlation_id"] == done["correlation_id"]
    assert step(done, "after")["output"]["n"] == step(child, "c")["output"]["n"] * 2
    # cancelling a parent cancels its running sub-run
    run = await start(store, "parent", {"n": 1})
    running = await runs.get(store, run["id"])
    await runs.cancel(store, run["id"])
    child = await runs.get(store, step(running, "child")["sub_run_id"])
    assert child["status"] == "cancelled"


async def test_artifacts_json_and_bytes(store: Store) -> None:
    await agent(store, "keeper", "wf_artifacts")
    await workflow(store, """
name: keeps
version: 1.0.0
steps:
  - id: keep
    agent: keeper
    input: {x: 1}
""")
    run = await start(store, "keeps")
    done = await drive(store, run["id"])
    assert done["status"] == "succeeded"
    from agentos.workflows import artifacts

    listed = await artifacts.listing(store, run["id"])
    assert [(a["name"], a["kind"], a["step"]) for a in listed] == [
        ("raw.bin", "bytes", "keep"), ("report", "json", "keep")]
    assert (await artifacts.get(store, run["id"], "report")).value == {
        "ok": True, "input": {"x": 1}}
    assert (await artifacts.get(store, run["id"], "raw.bin")).value == b"\x00\x01binary"
    # too large, a bad name, a task of no run: refused, nothing stored
    task_id = step(done, "keep")["tasks"][0]["task_id"]
    with pytest.raises(PayloadTooLarge):
        await artifacts.put(store, task_id, "big", b"x" * 101, max_bytes=100)
    with pytest.raises(InvalidInput):
        await artifacts.put(store, task_id, "no/slash", {}, max_bytes=100)
    [(lone, _)] = await queue.submit(store, [TaskIn(agent="keeper")])
    with pytest.raises(InvalidInput):
        await artifacts.put(store, lone.id, "x", {}, max_bytes=100)
    assert len(await artifacts.listing(store, run["id"])) == 2


async def test_handler_asks_for_approval(store: Store) -> None:
    await agent(store, "asker", "wf_ask")
    [(task, _)] = await queue.submit(store, [TaskIn(agent="asker", input={"role": "viewer"})])
    worker = asyncio.create_task(Worker(store, concurrency=2).run())
    try:
        for _ in range(100):
            found, _ = await approvals.page(store, status=approvals.Status.PENDING)
            if found:
                break
            await asyncio.sleep(0.05)
        [asked] = found
        assert asked.task_id == task.id and asked.role is Role.VIEWER
        await approvals.decide(store, asked.id, False, "no", actor="user:v", role=Role.VIEWER)
        for _ in range(100):
            done = await queue.get(store, task.id)
            if done.status.final:
                break
            await asyncio.sleep(0.05)
        assert done.status is Status.SUCCEEDED
        assert done.output == {"approved": False, "by": "user:v", "comment": "no",
                               "at": done.output["at"]}
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_retention_keeps_what_runs_and_the_engine_need(store: Store) -> None:
    from datetime import timedelta

    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "60"))
    run = await start(store, "waiter", {"device": "p7"})
    consumer = engine.consumer(store)
    await consumers.catch_up(store, consumer)
    [noise] = await events.append(store, [events.EventIn(type="noise.x")])
    # the running run's chain stays, and so does what the engine has not read yet
    pruned = await events.prune(store, timedelta(microseconds=1))
    left = {e.id for e in (await events.query(store, events.Query(limit=1000)))[0]}
    assert noise.event.id in left and pruned.deleted == 0
    await consumers.catch_up(store, consumer)
    while await router.route_batch(store):  # (events not routed yet are kept too)
        pass
    await events.prune(store, timedelta(microseconds=1))
    left = {e.id for e in (await events.query(store, events.Query(limit=1000)))[0]}
    assert noise.event.id not in left
    chain, _ = await events.query(store, events.Query(correlation_id=run["correlation_id"]))
    assert "workflow.started" in [e.type for e in chain]
    await runs.cancel(store, run["id"])
    await consumers.catch_up(store, consumer)
    while await router.route_batch(store):
        pass
    await events.prune(store, timedelta(microseconds=1))
    assert (await events.query(store, events.Query(correlation_id=run["correlation_id"])))[0] \
        == []


async def test_a_template_that_makes_an_unstorable_value_fails_its_step(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, """
name: nul
version: 1.0.0
steps:
  - id: a
    agent: doubler
  - id: b
    agent: doubler
    input: {x: "{{ 'a\\\\u0000b' }}"}
    depends_on: [a]
""")
    await workflow(store, LINEAR)
    bad = await start(store, "nul")
    good = await start(store, "linear", {"n": 1})
    done = await drive(store, bad["id"])
    assert done["status"] == "failed" and "cannot be stored" in step(done, "b")["error"][
        "message"]
    # the engine went on with the other run (the bad one did not stop its batches)
    assert (await drive(store, good["id"]))["status"] == "succeeded"


@pytest.mark.parametrize("template", [
    "{{ 'x'|center(10**9) }}", "{{ 'x'.ljust(10**9) }}", "{{ 'x' * 10**9 }}",
    "{{ ['ab'] * 10**9 }}", "{{ 'x'|indent(10**9) }}"])
async def test_a_template_that_would_make_a_huge_value_is_refused(
        store: Store, template: str) -> None:
    """Statically unbounded templates are refused with the definition (nothing
    written); one whose size depends on the input fails its step, at once, naming
    the bound."""
    await agent(store, "doubler", "wf_double")
    with pytest.raises(ValidationFailed) as bad:
        await workflow(store, f"""
name: huge
version: 1.0.0
steps:
  - id: a
    agent: doubler
    input: {{x: "{template}"}}
""")
    [error] = bad.value.details["errors"]
    assert error["path"] == "steps[0].input.x" and "template" in error["message"]
    with pytest.raises(NotFound):
        await definitions.versions(store, "huge")


async def test_a_template_past_its_bounds_at_run_time_fails_its_step(store: Store) -> None:
    await agent(store, "doubler", "wf_double")
    await workflow(store, """
name: grow
version: 1.0.0
steps:
  - id: a
    agent: doubler
  - id: b
    agent: doubler
    input: {x: "{{ input.s|replace('', input.s) }}"}
    depends_on: [a]
""")
    bad = await start(store, "grow", {"s": "x" * 5000})  # 25 M characters
    done = await drive(store, bad["id"])
    assert done["status"] == "failed"
    assert "would make more than 1000000" in step(done, "b")["error"]["message"]


async def test_a_run_whose_results_cannot_be_applied_fails_alone(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying one run's step end raises (a bug, a value the database refuses): that
    run fails with engine_error, and the other runs in the same batches go on. (The
    engine's batch used to fail whole, again and again, holding every run back.)"""
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    good = [await start(store, "linear", {"n": n}) for n in range(3)]
    poisoned = await start(store, "linear", {"n": 9})
    original = engine.Batch._task_ended

    async def task_ended(self: engine.Batch, run: engine.Run, state: Any, r: Any) -> None:
        if run.id == poisoned["id"] and state.step == "b":
            raise RuntimeError("cannot apply this one")
        await original(self, run, state, r)

    monkeypatch.setattr(engine.Batch, "_task_ended", task_ended)
    failed = await drive(store, poisoned["id"])
    assert failed["status"] == "failed" and failed["error"]["type"] == "engine_error"
    assert "RuntimeError: cannot apply this one" in failed["error"]["message"]
    assert step(failed, "a")["status"] == "succeeded"
    assert step(failed, "b")["status"] == "cancelled"
    for run in good:
        assert (await drive(store, run["id"]))["status"] == "succeeded"
    [position] = await consumers.positions(store, [engine.CONSUMER])
    assert position.lag_events == 0


async def test_a_run_s_detail_is_bounded_and_its_step_tasks_paged(store: Store) -> None:
    """A run's detail shows each step's first tasks and counts them all; the rest are
    paged by cursor, every task once, in item order (the detail used to hold every
    task and attempt of every step, a fan-out's thousands included)."""
    await agent(store, "planner", "wf_plan")
    await agent(store, "doubler", "wf_double")
    await workflow(store, FAN_OUT.replace("{coe}", "false"))
    devices = [f"d{i}" for i in range(12)]
    run = await start(store, "fan", {"devices": devices, "bad": "none"})
    await drive(store, run["id"])
    shown = await runs.get(store, run["id"], tasks_shown=5)
    explore = step(shown, "explore")
    assert [t["item"] for t in explore["tasks"]] == [0, 1, 2, 3, 4]
    assert explore["tasks_total"] == 12 and explore["tasks_next"] == "1:4"
    assert explore["tasks"][0]["attempts"][0]["outcome"] == "succeeded"
    assert step(shown, "plan")["tasks_total"] == 1 and step(shown, "plan")["tasks_next"] is None
    assert shown["transitions_more"] is False
    items, after = [], explore["tasks_next"]
    while after is not None:
        page, after = await runs.step_tasks(store, run["id"], "explore", after=after, limit=3)
        assert len(page) <= 3 and all(t["attempts"] for t in page)
        items += [t["item"] for t in page]
    assert items == list(range(5, 12))
    whole, none_after = await runs.step_tasks(store, run["id"], "explore", limit=500)
    assert [t["item"] for t in whole] == list(range(12)) and none_after is None
    with pytest.raises(InvalidInput):
        await runs.step_tasks(store, run["id"], "explore", after="1;4")
    with pytest.raises(NotFound):
        await runs.step_tasks(store, run["id"], "nonesuch")
    with pytest.raises(NotFound):
        await runs.step_tasks(store, "no-such-run", "explore")


async def test_a_sub_workflow_step_runs_its_pinned_version_or_the_latest(store: Store) -> None:
    """A workflow step with ``version`` runs that version while a later one is
    published; without it, the latest published version at the time the step starts;
    a pinned version no longer published fails the step, naming why."""
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    await workflow(store, LINEAR.replace("version: 1.0.0", "version: 1.1.0")
                   .replace("steps.b.output.n + 1", "steps.b.output.n + 100"))
    await workflow(store, """
name: parents
version: 1.0.0
steps:
  - id: pinned
    type: workflow
    workflow: linear
    version: 1.0.0
    input: {n: "{{ input.n }}"}
  - id: latest
    type: workflow
    workflow: linear
    input: {n: "{{ input.n }}"}
""")
    done = await drive(store, (await start(store, "parents", {"n": 1}))["id"])
    assert done["status"] == "succeeded", done
    pinned = await runs.get(store, step(done, "pinned")["sub_run_id"])
    latest = await runs.get(store, step(done, "latest")["sub_run_id"])
    assert (pinned["version"], latest["version"]) == ("1.0.0", "1.1.0")
    # c doubles b's n + 1 (1.0.0) or b's n + 100 (1.1.0); b's n is 4
    assert (step(done, "pinned")["output"]["c"]["n"],
            step(done, "latest")["output"]["c"]["n"]) == (10, 208)
    await definitions.change_status(store, "linear", "1.0.0", "deprecate")
    failed = await drive(store, (await start(store, "parents", {"n": 1}))["id"])
    assert failed["status"] == "failed", failed
    assert step(failed, "pinned")["status"] == "failed"
    assert "1.0.0" in step(failed, "pinned")["error"]["message"], step(failed, "pinned")


async def test_a_run_s_whole_transition_history_is_paged(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's detail keeps its latest transitions and says earlier ones were left
    out; runs.transitions pages the whole history, oldest first, each once."""
    await agent(store, "doubler", "wf_double")
    await workflow(store, LINEAR)
    done = await drive(store, (await start(store, "linear", {"n": 3}))["id"])
    whole, after = await runs.transitions(store, done["id"])
    assert after is None and done["transitions"] == whole and not done["transitions_more"]
    assert whole[0] == {**whole[0], "step": None, "from": None, "to": "running"}
    assert whole[-1]["step"] is None and whole[-1]["to"] == "succeeded" and len(whole) > 6
    monkeypatch.setattr(runs, "TRANSITIONS_SHOWN", 3)
    shown = await runs.get(store, done["id"])
    assert shown["transitions"] == whole[-3:] and shown["transitions_more"]
    paged, after = [], None
    while True:
        page, after = await runs.transitions(store, done["id"], after=after, limit=2)
        paged += page
        if after is None:
            break
    assert paged == whole
    with pytest.raises(InvalidInput):
        await runs.transitions(store, done["id"], after="x1")
    with pytest.raises(NotFound):
        await runs.transitions(store, "no-such-run")
