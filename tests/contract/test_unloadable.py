"""A worker that cannot load an agent's handler leaves its tasks to one that can:
nothing spent, nothing run here, and the reason on its worker record."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import pytest

from agentos import agent_spec, queue, registry
from agentos.explain import task as task_explain
from agentos.store import Store
from agentos.tasks import Status, TaskIn
from agentos.worker import instances
from agentos.worker.loop import Worker

FAR = "far_away_handlers"  # a module this process finds only once the test says so


async def publish(store: Store, name: str, handler: dict[str, str]) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0", "handler": handler,
         "limits": {"max_retries": 0}}), publish=True)


async def submit(store: Store, name: str) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=name, input={"n": 1})])
    return task.id


async def test_a_worker_that_cannot_load_a_handler_hands_its_tasks_to_one_that_can(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await publish(store, "far", {"type": "python", "target": f"{FAR}:handle"})
    await publish(store, "near", {"type": "python", "target": "tests.handlers:echo"})
    far, near = await submit(store, "far"), await submit(store, "near")

    # a worker without the module: it runs what it can, hands the rest back unspent
    lacking = Worker(store, worker_id="lacking", poll_interval=0.05)
    running = asyncio.create_task(lacking.run())
    try:
        for _ in range(200):
            if (await queue.get(store, near)).status is Status.SUCCEEDED and \
                    lacking.unloadable:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the lacking worker did not get going")
        await asyncio.sleep(0.3)  # time to claim the far task again, were it to
        waiting = await queue.get(store, far)
        assert waiting.status is Status.PENDING  # max_retries 0, and not failed
        [handed] = waiting.attempts  # claimed once, then left out of its claims
        assert (handed.outcome, handed.error["type"]) == ("lost", "handler_unloadable")
        assert "cannot load the handler: ModuleNotFoundError" in handed.error["message"]
        [record] = [w for w in await instances.list_all(store) if w["id"] == "lacking"]
        assert list(record["unloadable"]) == ["far"]
        assert f"No module named '{FAR}'" in record["unloadable"]["far"]
        why = await task_explain.explain(store, far)
        assert why["gate"] == "no_worker"
        assert "no live worker can load agent far's handler (lacking: " in why["summary"]
    finally:
        lacking.stop()
        await asyncio.wait_for(running, 30)

    # a worker that has it runs it, on the attempt the first one did not spend
    (tmp_path / f"{FAR}.py").write_text(
        "async def handle(ctx, data):\n    return {'ran': data['n']}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        await asyncio.wait_for(Worker(store, worker_id="able", burst=True).run(), 30)
    finally:
        sys.modules.pop(FAR, None)
    done = await queue.get(store, far)
    assert (done.status, done.output) == (Status.SUCCEEDED, {"ran": 1})
    assert [(a.worker_id, a.outcome) for a in done.attempts] == [
        ("lacking", "lost"), ("able", "succeeded")]


async def test_a_worker_of_named_agents_stops_claiming_the_unloadable_one(
        store: Store) -> None:
    await publish(store, "ghost", {"type": "command", "argv": ["/no/such/program"]})
    ghost = await submit(store, "ghost")
    worker = Worker(store, worker_id="named", agents=["ghost"], burst=True)
    await asyncio.wait_for(worker.run(), 30)  # burst: it ends once it claims nothing
    waiting = await queue.get(store, ghost)
    assert waiting.status is Status.PENDING and len(waiting.attempts) == 1
    assert "no program /no/such/program" in waiting.attempts[0].error["message"]
    assert worker.unloadable.keys() == {"ghost"}
