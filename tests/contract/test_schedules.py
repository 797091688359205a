"""Schedules on both backends: CRUD, pause/resume, firing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from agentos import agent_spec, events, queue, registry, schedules
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.schedules import EventTemplate, ScheduleIn, SchedulePatch
from agentos.store import Store
from agentos.store.tables import schedules as table


async def make_due(store: Store, name: str, ago: timedelta) -> None:
    """As if the schedule was made, and its tick came, ``ago``."""
    then = datetime.now(UTC) - ago
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.name == name)
                           .values(next_run_at=then, created_at=then))


async def test_create_list_fire(store: Store) -> None:
    s = await schedules.create(store, ScheduleIn(
        name="nightly", cron="0 2 * * *", timezone="Europe/Paris",
        event=EventTemplate(type="qa.nightly", payload={"suite": "smoke"}, priority="high")))
    assert s.to_dict()["next_run_at"] is not None and s.row.kind == "cron"
    with pytest.raises(Conflict):
        await schedules.create(store, ScheduleIn(name="nightly", interval_s=5,
                                                 event=EventTemplate(type="x")))
    assert await schedules.fire_due(store) == 0
    await make_due(store, "nightly", timedelta(seconds=1))
    assert await schedules.fire_due(store) == 1
    assert await schedules.fire_due(store) == 0  # moved on to the next night
    [e], _ = await events.query(store, events.Query(type="qa.nightly"))
    assert e.payload["suite"] == "smoke" and e.source == "schedule:nightly"
    assert e.priority == events.Priority.HIGH
    s = await schedules.get(store, "nightly")
    assert s.row.fire_count == 1 and s.row.last_event_id == e.id
    assert s.row.next_run_at > datetime.now(UTC)


@pytest.mark.parametrize(("policy", "expected"), [("once", 1), ("skip", 0)])
async def test_missed_ticks(store: Store, policy: str, expected: int) -> None:
    await schedules.create(store, ScheduleIn.model_validate(
        {"name": "m", "interval_s": 600, "misfire": policy, "event": {"type": "m.tick"}}))
    await make_due(store, "m", timedelta(minutes=65))  # last tick 5 min ago: missed
    assert await schedules.fire_due(store) == expected
    assert (await schedules.get(store, "m")).row.next_run_at > datetime.now(UTC)


async def test_pause_resume_patch_delete(store: Store) -> None:
    await schedules.create(store, ScheduleIn(name="p", interval_s=1,
                                             event=EventTemplate(type="p.tick")))
    await schedules.change(store, "p", SchedulePatch(paused=True))
    await make_due(store, "p", timedelta(hours=1))
    assert await schedules.fire_due(store) == 0
    resumed = await schedules.change(store, "p", SchedulePatch(paused=False))
    assert resumed.row.next_run_at > datetime.now(UTC)  # no replay of paused time
    patched = await schedules.change(store, "p", SchedulePatch(cron="*/5 * * * *"))
    assert patched.row.kind == "cron" and patched.row.interval_s is None
    with pytest.raises(InvalidInput):
        await schedules.change(store, "p", SchedulePatch(timezone="Nowhere/Land"))
    await schedules.remove(store, "p")
    with pytest.raises(NotFound):
        await schedules.get(store, "p")


async def test_one_shot_fires_once_then_stops(store: Store) -> None:
    await schedules.create(store, ScheduleIn(name="once", at=datetime.now(UTC),
                                             event=EventTemplate(type="o.tick")))
    assert await schedules.fire_due(store) == 1
    assert await schedules.fire_due(store) == 0
    assert (await schedules.get(store, "once")).row.next_run_at is None


# ------------------------------------------------------- schedules that submit tasks


async def publish(store: Store, name: str, version: str = "1.0.0") -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": version, "handler": {"type": "python", "target": "m:f"}}),
        publish=True)


async def all_tasks(store: Store) -> list[Any]:
    return list((await queue.list_tasks(store))[0])


async def test_a_tick_fires_the_event_and_submits_the_task_under_it(store: Store) -> None:
    await publish(store, "reporter")
    s = await schedules.create(store, ScheduleIn.model_validate({
        "name": "report", "interval_s": 600, "event": {"type": "report.due"},
        "task": {"agent": "reporter", "input": {"kind": "daily"}, "priority": 7,
                 "max_retries": 1}}))
    assert s.to_dict()["task"] == {"agent": "reporter", "input": {"kind": "daily"},
                                   "priority": 7, "max_retries": 1}
    await make_due(store, "report", timedelta(seconds=1))
    assert await schedules.fire_due(store) == 1
    [e], _ = await events.query(store, events.Query(type="report.due"))
    [task] = await all_tasks(store)
    assert (task.agent, task.agent_version, task.input, task.priority, task.max_retries) == (
        "reporter", "1.0.0", {"kind": "daily"}, 7, 1)
    assert task.correlation_id == e.correlation_id and task.causation_id == e.id
    assert task.idempotency_key == f"schedule:report:{e.payload['scheduled_for']}"
    row = (await schedules.get(store, "report")).row
    assert (row.last_event_id, row.last_task_id, row.fire_count) == (e.id, task.id, 1)
    # the same tick again (as if a second scheduler got there too): nothing new
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.name == "report").values(
            next_run_at=datetime.fromisoformat(e.payload["scheduled_for"])))
    assert await schedules.fire_due(store) == 0
    assert len(await all_tasks(store)) == 1
    assert len((await events.query(store, events.Query(type="report.due")))[0]) == 1


async def test_a_schedule_may_only_submit_a_task(store: Store) -> None:
    await publish(store, "reporter")
    await publish(store, "reporter", "2.0.0")
    s = await schedules.create(store, ScheduleIn.model_validate({
        "name": "only-task", "at": datetime.now(UTC).isoformat(),
        "task": {"agent": "reporter", "version": "1.0.0"}}))
    assert s.to_dict()["event"] is None
    assert await schedules.fire_due(store) == 1
    [task] = await all_tasks(store)
    assert (task.agent_version, task.correlation_id, task.causation_id) == (
        "1.0.0", task.id, None)
    fired, _ = await events.query(store, events.Query(source="schedule:only-task"))
    assert fired == []
    assert (await schedules.get(store, "only-task")).row.last_task_id == task.id


@pytest.mark.parametrize("task", [
    {"agent": "ghost"},  # no such agent
    {"agent": "drafty"},  # only a draft
    {"agent": "reporter", "version": "9.9.9"},  # no such version
    {"agent": "reporter", "version": "0.1.0"},  # a draft version of a published agent
])
async def test_a_task_for_an_agent_that_cannot_run_writes_nothing(
        store: Store, task: dict[str, Any]) -> None:
    await publish(store, "reporter")
    for name, version in (("drafty", "1.0.0"), ("reporter", "0.1.0")):
        await registry.create(store, agent_spec.from_object(
            {"name": name, "version": version,
             "handler": {"type": "python", "target": "m:f"}}))
    with pytest.raises(InvalidInput) as caught:
        await schedules.create(store, ScheduleIn.model_validate(
            {"name": "bad", "interval_s": 60, "task": task}))
    assert caught.value.code == "agent_not_runnable"
    assert await schedules.list_all(store) == []
    await schedules.create(store, ScheduleIn.model_validate(
        {"name": "good", "interval_s": 60, "event": {"type": "x"}}))
    before = (await schedules.get(store, "good")).to_dict()
    with pytest.raises(InvalidInput):
        await schedules.change(store, "good", SchedulePatch.model_validate({"task": task}))
    assert (await schedules.get(store, "good")).to_dict() == before


async def test_a_schedule_fires_something(store: Store) -> None:
    with pytest.raises(ValueError, match="an event to fire, a task to submit"):
        ScheduleIn.model_validate({"name": "empty", "interval_s": 60})
    await publish(store, "reporter")
    await schedules.create(store, ScheduleIn.model_validate(
        {"name": "s", "interval_s": 60, "event": {"type": "x"}}))
    with pytest.raises(InvalidInput):  # removing the only thing it fires
        await schedules.change(store, "s", SchedulePatch.model_validate({"event": None}))
    # swap the event for a task, then drop the task again for an event
    swapped = await schedules.change(store, "s", SchedulePatch.model_validate(
        {"event": None, "task": {"agent": "reporter"}}))
    assert swapped.to_dict()["event"] is None
    assert swapped.to_dict()["task"] == {"agent": "reporter", "input": {}, "priority": 5}
    back = await schedules.change(store, "s", SchedulePatch.model_validate(
        {"event": {"type": "y"}, "task": None}))
    assert back.to_dict()["task"] is None and back.to_dict()["event"]["type"] == "y"


async def test_a_task_whose_agent_was_withdrawn_is_skipped_and_recorded(store: Store) -> None:
    await publish(store, "reporter")
    await schedules.create(store, ScheduleIn.model_validate({
        "name": "r", "interval_s": 600, "event": {"type": "r.tick"},
        "task": {"agent": "reporter"}}))
    await registry.change_status(store, "reporter", "1.0.0", "deprecate")
    await make_due(store, "r", timedelta(seconds=1))
    assert await schedules.fire_due(store) == 1  # the event still fires
    assert await all_tasks(store) == []
    row = (await schedules.get(store, "r")).row
    assert row.last_error["code"] == "agent_not_runnable" and row.last_task_id is None
    assert row.next_run_at > datetime.now(UTC)  # and the schedule moves on


async def test_interval_ticks_are_anchored_on_the_last_change(store: Store) -> None:
    async def shift(seconds: float, *columns: str) -> None:
        row = (await schedules.get(store, "i")).row
        async with store.write() as conn:
            await conn.execute(update(table).where(table.c.name == "i").values(
                {c: getattr(row, c) - timedelta(seconds=seconds) for c in columns}))

    await schedules.create(store, ScheduleIn(name="i", interval_s=600,
                                             event=EventTemplate(type="i.tick")))
    # Given a schedule created 250 s ago, whose interval then changes to an hour
    await shift(250, "created_at")
    patched = (await schedules.change(store, "i", SchedulePatch(interval_s=3600))).row
    # When an hour passes (the stored times move back an hour) and the tick fires
    await shift(3601, "created_at", "next_run_at")
    due = (await schedules.get(store, "i")).row.next_run_at
    assert due == patched.next_run_at - timedelta(seconds=3601)
    assert await schedules.fire_due(store) == 1
    # Then the next tick is an hour after it, on the change's grid, not the creation's
    assert (await schedules.get(store, "i")).row.next_run_at == due + timedelta(hours=1)
    # and a resume keeps to that grid
    await schedules.change(store, "i", SchedulePatch(paused=True))
    resumed = await schedules.change(store, "i", SchedulePatch(paused=False))
    assert resumed.row.next_run_at == due + timedelta(hours=1)


# ------------------------------------------------------------------ the fires kept


async def test_a_task_only_schedule_lists_each_fire_with_its_task(store: Store) -> None:
    await publish(store, "reporter")
    await schedules.create(store, ScheduleIn.model_validate(
        {"name": "sweep", "interval_s": 600, "task": {"agent": "reporter"}}))
    assert await schedules.fires(store, "sweep") == ([], None)
    for _ in range(2):
        await make_due(store, "sweep", timedelta(seconds=1))
        assert await schedules.fire_due(store) == 1
    found, more = await schedules.fires(store, "sweep")
    tasks = await all_tasks(store)
    assert more is None and len(tasks) == 2
    # newest first, each with the task it submitted and no event
    assert [f.row.task_id for f in found] == [t.id for t in sorted(
        tasks, key=lambda t: t.created_at, reverse=True)]
    assert [f.to_dict()["scheduled_for"] for f in found] == [
        t.idempotency_key.removeprefix("schedule:sweep:") for t in reversed(
            sorted(tasks, key=lambda t: t.created_at))]
    assert {(f.row.event_id, f.row.catch_up, f.row.missed, f.row.error) for f in found} == {
        (None, False, 0, None)}
    # pages of one follow the cursor to the end
    first, cursor = await schedules.fires(store, "sweep", limit=1)
    second, end = await schedules.fires(store, "sweep", before=cursor, limit=1)
    assert [f.row.id for f in first + second] == [f.row.id for f in found] and end is None


async def test_a_fire_records_its_event_a_catch_up_and_a_skipped_task(store: Store) -> None:
    await publish(store, "reporter")
    await schedules.create(store, ScheduleIn.model_validate({
        "name": "r", "interval_s": 600, "event": {"type": "r.tick"},
        "task": {"agent": "reporter"}}))
    await registry.change_status(store, "reporter", "1.0.0", "deprecate")
    await make_due(store, "r", timedelta(minutes=25))  # three ticks missed, one caught up
    assert await schedules.fire_due(store) == 1
    [fire], _ = await schedules.fires(store, "r")
    [e], _ = await events.query(store, events.Query(type="r.tick"))
    assert (fire.row.event_id, fire.row.task_id, fire.row.catch_up, fire.row.missed) == (
        e.id, None, True, 2)
    assert fire.row.error["code"] == "agent_not_runnable"
    assert fire.to_dict()["scheduled_for"] == e.payload["scheduled_for"]


async def test_the_same_tick_fired_again_is_recorded_once(store: Store) -> None:
    await publish(store, "reporter")
    await schedules.create(store, ScheduleIn.model_validate(
        {"name": "twice", "interval_s": 600, "task": {"agent": "reporter"}}))
    await make_due(store, "twice", timedelta(seconds=1))
    due = (await schedules.get(store, "twice")).row.next_run_at
    assert await schedules.fire_due(store) == 1
    async with store.write() as conn:  # as if a second scheduler fired that tick too
        await conn.execute(update(table).where(table.c.name == "twice").values(
            next_run_at=due))
    assert await schedules.fire_due(store) == 0
    assert len((await schedules.fires(store, "twice"))[0]) == 1


async def test_fires_are_bounded_and_go_with_their_schedule(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedules, "KEEP_FIRES", 2)
    await schedules.create(store, ScheduleIn(name="b", interval_s=600,
                                             event=EventTemplate(type="b.tick")))
    await schedules.create(store, ScheduleIn(name="other", interval_s=600,
                                             event=EventTemplate(type="o.tick")))
    for _ in range(4):
        await make_due(store, "b", timedelta(seconds=1))
        assert await schedules.fire_due(store) == 1
    await make_due(store, "other", timedelta(seconds=1))
    assert await schedules.fire_due(store) == 1
    fired, _ = await events.query(store, events.Query(type="b.tick"))
    kept, _ = await schedules.fires(store, "b")
    assert [f.row.event_id for f in kept] == [e.id for e in fired[-2:]][::-1]  # the newest
    await schedules.remove(store, "b")
    with pytest.raises(NotFound):
        await schedules.fires(store, "b")
    await schedules.create(store, ScheduleIn(name="b", interval_s=600,
                                             event=EventTemplate(type="b.tick")))
    assert await schedules.fires(store, "b") == ([], None)  # none left behind
    assert len((await schedules.fires(store, "other"))[0]) == 1
    with pytest.raises(InvalidInput):
        await schedules.fires(store, "other", limit=0)
