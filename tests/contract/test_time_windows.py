"""A window of creation time over tasks and events (``since``/``until``) finds every
row created in it, newest first or oldest first, also when rows' times are out of
their numbering's order (transactions that overlap), and pages like the whole list:
the store bounds the read by sequence numbers it finds from the window (time_order)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from agentos import events, queue
from agentos.events import EventIn
from agentos.store import Store, time_order
from agentos.store.tables import events as events_table
from agentos.store.tables import tasks as tasks_table
from agentos.tasks import TaskIn
from tests.contract.test_queue import agent

ROWS = 120
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def times(rng: random.Random) -> list[datetime]:
    """A minute apart in their order, but each up to five minutes early or late (within
    time_order.SLACK), some of them equal."""
    out = [BASE + timedelta(minutes=i) + timedelta(seconds=rng.randint(-300, 300))
           for i in range(ROWS)]
    out[40] = out[41]
    return out


def windows(at: list[datetime]) -> list[tuple[datetime | None, datetime | None]]:
    picks = [BASE - timedelta(days=1), at[0], at[7], at[40], at[63], at[-1],
             BASE + timedelta(days=1), BASE + timedelta(minutes=30, seconds=1)]
    return [(a, b) for a in [None, *picks] for b in [None, *picks] if a is None or
            b is None or a <= b]


async def test_a_window_of_created_time_lists_exactly_its_tasks(store: Store) -> None:
    await agent(store)
    made = await queue.submit(store, [TaskIn(agent="a", input={"n": n}) for n in range(ROWS)])
    at = times(random.Random(7))
    async with store.write() as conn:
        for (task, _), moment in zip(made, at, strict=True):
            await conn.execute(update(tasks_table).where(tasks_table.c.id == task.id)
                               .values(created_at=moment))
    for since, until in windows(at):
        expected = [n for n in range(ROWS) if (since is None or at[n] >= since) and
                    (until is None or at[n] < until)]
        for newest_first in (True, False):
            seen: list[int] = []
            after, before = 0, None
            while True:  # pages of 7, by the cursor of the order
                page, following = await queue.list_tasks(
                    store, limit=7, newest_first=newest_first, before_seq=before,
                    after_seq=after, since=since, until=until)
                seen += [t.input["n"] for t in page]
                if following is None:
                    break
                before, after = (following, 0) if newest_first else (None, following)
            assert seen == (expected[::-1] if newest_first else expected), (since, until)


async def test_a_window_of_created_time_lists_exactly_its_events(store: Store) -> None:
    appended = await events.append(store, [EventIn(type="w.tick", payload={"n": n})
                                           for n in range(ROWS)])
    at = times(random.Random(11))
    async with store.write() as conn:
        for one, moment in zip(appended, at, strict=True):
            await conn.execute(update(events_table).where(events_table.c.id == one.event.id)
                               .values(created_at=moment))
    for since, until in windows(at):
        expected = [n for n in range(ROWS) if (since is None or at[n] >= since) and
                    (until is None or at[n] < until)]
        page, _ = await events.query(store, events.Query(type="w.*", since=since, until=until,
                                                         newest_first=True, limit=1000))
        assert [e.payload["n"] for e in page] == expected[::-1], (since, until)


async def test_an_empty_table_and_a_window_past_the_last_row_read_nothing(store: Store
                                                                          ) -> None:
    c = tasks_table.c
    async with store.read() as conn:
        assert await time_order.seq_window(conn, c.seq, c.created_at, BASE, None) == (1, None)
    await agent(store)
    await queue.submit(store, [TaskIn(agent="a")])
    later = datetime.now(UTC) + time_order.SLACK * 2
    assert (await queue.list_tasks(store, since=later))[0] == []
    assert len((await queue.list_tasks(store, until=later))[0]) == 1
