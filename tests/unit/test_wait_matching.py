"""Which event ends each wait: the index of one-value filters ends the same waits, with
the same events, as trying each filter on each event (router.mismatch) does."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from agentos import router
from agentos.events import Event, Priority
from agentos.workflows import waits

VALUES: list[Any] = [1, 1.0, 0, True, False, None, "1", "p7", [1], {"a": 1}, -0.0]
PAYLOADS: list[dict[str, Any]] = (
    [{"k": v} for v in VALUES] + [{"k": v, "m": w} for v in VALUES[:6] for w in VALUES[:6]]
    + [{}, {"m": 1}, {"k": {"x": 1}}, {"k": {"x": True}}, {"k": {"x": None}}])
FILTERS: list[dict[str, Any]] = (
    [{}] + [{"k": v} for v in VALUES] + [{"k": v, "m": w} for v in VALUES[:6]
                                         for w in VALUES[:6]]
    + [{"k.x": 1}, {"k.x": True}, {"k.x": None}, {"k": [1, "p7"]}, {"k": [True]}])


def event(seq: int, type_: str, payload: dict[str, Any]) -> Event:
    return Event(seq, f"e{seq}", type_, "test", payload, Priority.NORMAL, "c", None, None,
                 None, None, datetime.now(UTC))


def reference(rows: list[Any], events: list[Event]) -> dict[tuple[str, str], Event]:
    """Each wait's first event after its horizon that router.mismatch lets through."""
    out = {}
    for w in rows:
        for e in events:
            if e.seq > w.after_seq and router.mismatch(
                    {"event": w.event_glob, "filter": w.filter}, e.type, e.payload,
                    None) is None:
                out[(w.run_id, w.step)] = e
                break
    return out


def test_the_index_ends_the_waits_trying_each_filter_would() -> None:
    types = ["device.ready", "device.gone", "other.ready", "task.completed"]
    events = [event(seq, types[seq % len(types)], payload)
              for seq, payload in enumerate(PAYLOADS * 2, start=1)]
    rows = [SimpleNamespace(run_id=f"r{n}", step=f"s{n}", event_glob=glob, filter=f,
                            after_seq=after)
            for n, (glob, f, after) in enumerate(itertools.product(
                ["device.*", "*.ready", "*", "task.*", "none"], FILTERS,
                [0, len(PAYLOADS) // 2, len(PAYLOADS) + 3]))]
    by_type: dict[str, list[Event]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e)
    found = asyncio.run(waits.first_matches(rows, by_type))
    expected = reference(rows, events)
    assert len(expected) > 400  # the grid does end waits: the comparison means something
    assert {k: e.seq for k, e in found.items()} == {k: e.seq for k, e in expected.items()}


def test_equality_keys_are_a_filters_sameness() -> None:
    scalars = [v for v in VALUES if not isinstance(v, (list, dict))]
    for a, b in itertools.product(scalars, scalars):
        same = router.mismatch({"event": "*", "filter": {"k": a}}, "x", {"k": b}, None) is None
        assert (router.equality_key(a) == router.equality_key(b)) is same, (a, b)
    assert router.equality_key([1]) is None and router.equality_key({"a": 1}) is None
