"""Schedules on both backends: CRUD, pause/resume, firing."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from agentos import events, schedules
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
