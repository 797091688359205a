"""In-process subscriptions: ordered, filtered, resumable, fed from commits."""

import asyncio
from typing import Any

from agentos import events
from agentos.bus import Bus
from agentos.events import EventIn
from agentos.store import Store
from agentos.store import workflows as store_workflows


async def take(bus: Bus, n: int, type_glob: str = "*", after: int | None = None
               ) -> list[events.Event]:
    got: list[events.Event] = []
    async for e in bus.subscribe(type_glob, after):
        got.append(e)
        if len(got) == n:
            break
    return got


async def test_subscribers_get_new_events_in_order(store: Store) -> None:
    bus = Bus(store, poll_interval=5.0)  # a commit, not the poll timer, must wake it
    await bus.start()
    try:
        reader = asyncio.create_task(take(bus, 3, "job.*"))
        await asyncio.sleep(0.05)
        for t in ["job.a", "noise", "job.b", "job.c"]:
            await events.append(store, [EventIn(type=t)])
        got = await asyncio.wait_for(reader, 2.0)
        assert [e.type for e in got] == ["job.a", "job.b", "job.c"]
        # resume from the middle: the log fills in what the ring buffer does not hold
        again = await asyncio.wait_for(take(bus, 2, "*", after=1), 2.0)
        assert [e.type for e in again] == ["noise", "job.b"]
    finally:
        await bus.stop()


async def test_callback_api(store: Store) -> None:
    bus = Bus(store)
    await bus.start()
    seen: list[str] = []

    async def handler(e: events.Event) -> None:
        seen.append(e.type)

    task = bus.on("alert.*", handler)
    try:
        await asyncio.sleep(0.05)
        await events.append(store, [EventIn(type="alert.x"), EventIn(type="other")])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == ["alert.x"]
    finally:
        task.cancel()
        await bus.stop()


async def test_an_unwatched_bus_reads_nothing_until_a_subscriber_comes(store: Store) -> None:
    bus = Bus(store, poll_interval=5.0)
    reads: list[int] = []
    real_read = bus._read

    async def counting_read(after: int, type_glob: str | None = None) -> list[events.Event]:
        reads.append(after)
        return await real_read(after, type_glob)

    bus._read = counting_read  # type: ignore[method-assign]
    await bus.start()
    try:
        await events.append(store, [EventIn(type="early.a"), EventIn(type="early.b")])
        await asyncio.sleep(0.2)  # the pump was woken
        assert bus.cursor == 0 and reads == []  # an appending server reads nothing back
        assert await bus.head() == 2  # a subscriber from now on starts here
        # a subscriber from now gets what comes next; one resuming reads the log itself
        reader = asyncio.create_task(take(bus, 1))
        await asyncio.sleep(0.05)
        await events.append(store, [EventIn(type="late")])
        assert [e.type for e in await asyncio.wait_for(reader, 2.0)] == ["late"]
        again = await asyncio.wait_for(take(bus, 3, after=0), 2.0)
        assert [e.type for e in again] == ["early.a", "early.b", "late"]
    finally:
        await bus.stop()


async def test_appends_wake_no_unwatched_pump(store: Store) -> None:
    """With no subscriber the pump waits for one, not for appends: 30 appends give it
    no turn (each woke it before, a turn of an appending server's loop), and a
    subscriber that comes still gets what is appended next."""
    turns: list[int] = []
    wakeup = store.wakeup

    def counted(channel: str) -> Any:
        found = wakeup(channel)
        clear = found.clear

        def cleared() -> None:  # the pump clears its wake-up at every turn
            turns.append(1)
            clear()

        found.clear = cleared  # type: ignore[method-assign]
        return found

    store.wakeup = counted  # type: ignore[method-assign]
    bus = Bus(store, poll_interval=5.0)
    await bus.start()
    try:
        await asyncio.sleep(0.1)
        before = len(turns)
        for i in range(30):
            await events.append(store, [EventIn(type="noise", payload={"i": i})])
            await asyncio.sleep(0.01)  # the pump's turn, were it woken
        assert before >= 1  # the pump's wake-up is the counted one
        assert len(turns) == before
        reader = asyncio.create_task(take(bus, 1, "late", after=await bus.head()))
        await events.append(store, [EventIn(type="late")])
        assert [e.type for e in await asyncio.wait_for(reader, 2.0)] == ["late"]
    finally:
        await bus.stop()


async def test_a_bus_listens_for_runs_started_elsewhere(store: Store, backend: str) -> None:
    """The process's one listener (the bus's: LISTEN on PostgreSQL, the wake-up socket
    of a SQLite file) takes the channel a run's start notifies, so an idle workflow
    engine wakes when another server starts a run."""
    bus = Bus(store, poll_interval=5.0)
    await bus.start()
    try:
        for _ in range(200):
            if store_workflows.RUNS_CHANNEL in store.listening:
                break
            await asyncio.sleep(0.05)
        assert {store_workflows.RUNS_CHANNEL, events.CHANNEL} <= store.listening
    finally:
        await bus.stop()


async def test_a_channel_stays_listened_to_until_every_listen_of_it_ends(store: Store
                                                                       ) -> None:
    """Two listens in one process (a server's bus and its in-process worker) may share a
    channel: the one that ends first leaves it to the other (the cache's TTL and the
    lock waiters' polls read ``listening``)."""
    async def listening(channels: set[str]) -> None:
        async with asyncio.timeout(30):
            while not channels <= store.listening:
                await asyncio.sleep(0.01)

    second = asyncio.create_task(store.listen(["agentos_test_shared"]))
    first: asyncio.Task[None] | None = None
    try:
        await listening({"agentos_test_shared"})  # (each listen has its own connection)
        first = asyncio.create_task(store.listen(["agentos_test_a", "agentos_test_shared"]))
        await listening({"agentos_test_a"})
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert "agentos_test_a" not in store.listening
        assert "agentos_test_shared" in store.listening
    finally:
        tasks = [task for task in (first, second) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not store.listening & {"agentos_test_a", "agentos_test_shared"}
