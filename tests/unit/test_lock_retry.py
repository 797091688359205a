"""A lock transaction refused as a deadlock's victim is run again, from scratch; any
other error, or a victim too many times, reaches the caller."""

import pytest

from agentos.errors import NotFound, Unavailable
from agentos.locks.model import DEADLOCK_TRIES, again_if_victim
from agentos.store.errors import BUSY


async def test_a_victim_runs_again_until_it_commits() -> None:
    tries: list[int] = []

    async def op() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise Unavailable("deadlock detected", code=BUSY)
        return "granted"

    assert await again_if_victim(op) == "granted"
    assert len(tries) == 3


async def test_other_errors_and_a_lasting_conflict_reach_the_caller() -> None:
    tries: list[int] = []

    async def missing() -> None:
        tries.append(1)
        raise NotFound("no such lock", code="lock_not_found")

    with pytest.raises(NotFound):
        await again_if_victim(missing)
    assert len(tries) == 1

    async def unreachable() -> None:
        tries.append(1)
        raise Unavailable("the database is unreachable", code="database_unavailable")

    with pytest.raises(Unavailable):
        await again_if_victim(unreachable)
    assert len(tries) == 2

    async def always_victim() -> None:
        tries.append(1)
        raise Unavailable("deadlock detected", code=BUSY)

    with pytest.raises(Unavailable):
        await again_if_victim(always_victim)
    assert len(tries) == 2 + DEADLOCK_TRIES
