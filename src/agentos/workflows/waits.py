"""Which event ends each ``wait_event`` step: the first event after the wait's horizon
whose type matches its glob and whose payload its filter.

Most waits name one thing (``{"device_id": "p7"}``, ``{"order.id": 42}``): their
filters' values are looked up in an index of the batch's events, so a batch costs
about one lookup a wait, not one filter a wait and event. The others (a value "one
of" a list, or an object) are matched one event at a time, giving way to the event
loop every ``SLICE`` filters tried.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Hashable, Sequence
from typing import Any

from agentos import router
from agentos.events import Event

SLICE = 500  # filters tried (or events indexed) between two yields to the event loop


async def first_matches(waits: Sequence[Any], by_type: dict[str, list[Event]]
                        ) -> dict[tuple[str, str], Event]:
    """For each wait row (``run_id``, ``step``, ``event_glob``, ``filter``,
    ``after_seq``) the event of ``by_type`` that ends it, keyed by (run, step); waits
    no event ends are left out."""
    by_glob: dict[str, list[Any]] = {}
    for w in waits:
        by_glob.setdefault(w.event_glob, []).append(w)
    matched: dict[tuple[str, str], Event] = {}
    pace = _Pace()
    for glob, these in by_glob.items():
        candidates = sorted((e for kind, found in by_type.items()
                             if router.mismatch({"event": glob}, kind, {}, None) is None
                             for e in found), key=lambda e: e.seq)
        if not candidates:
            continue
        by_fields: dict[tuple[str, ...], list[Any]] = {}
        one_by_one: list[Any] = []
        for w in these:
            if all(router.equality_key(v) is not None for v in w.filter.values()):
                by_fields.setdefault(tuple(sorted(w.filter)), []).append(w)
            else:
                one_by_one.append(w)
        for fields, keyed in by_fields.items():
            index = await _index(candidates, fields, pace)
            for w in keyed:
                await pace.step()
                found = index.get(tuple(router.equality_key(w.filter[f]) for f in fields), [])
                at = bisect.bisect_right(found, w.after_seq, key=_seq)  # the first after
                if at < len(found):
                    matched[(w.run_id, w.step)] = found[at]
        for w in one_by_one:
            for event in candidates:
                if event.seq <= w.after_seq:
                    continue
                await pace.step()
                if router.mismatch({"event": glob, "filter": w.filter}, event.type,
                                   event.payload, None) is None:
                    matched[(w.run_id, w.step)] = event
                    break
    return matched


def _seq(event: Event) -> int:
    return event.seq


async def _index(events: list[Event], fields: tuple[str, ...], pace: _Pace
                 ) -> dict[tuple[Hashable, ...], list[Event]]:
    """``events`` (in log order) by their payload's values at ``fields``, as
    ``router.equality_key`` keys them; an event that lacks one, or holds a list or an
    object there, is in no entry."""
    index: dict[tuple[Hashable, ...], list[Event]] = {}
    for event in events:
        await pace.step()
        key = []
        for name in fields:
            found, value = router.lookup(event.payload, name)
            equal = router.equality_key(value) if found else None
            if equal is None:
                break
            key.append(equal)
        else:
            index.setdefault(tuple(key), []).append(event)
    return index


class _Pace:
    """Counts units of matching work; every ``SLICE`` gives the event loop a turn."""

    def __init__(self) -> None:
        self.done = 0

    async def step(self) -> None:
        self.done += 1
        if self.done % SLICE == 0:
            await asyncio.sleep(0)
