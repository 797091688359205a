"""The built-in projections' folds: pure functions of (state, event)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agentos import projections
from agentos.events import Event, Priority
from agentos.projections import (
    MAX_HOURS,
    AgentActivity,
    TaskStats,
    fold_activity,
    fold_stats,
    hour_key,
)

T0 = datetime(2026, 12, 5, 9, 59, 30, tzinfo=UTC)
_seq = itertools.count(1)


def event(kind: str, task: str, agent: str = "a", at: datetime = T0, **payload: Any) -> Event:
    return Event(next(_seq), f"e{task}{kind}", f"task.{kind}", "queue",
                 {"task_id": task, "agent": agent, **payload}, Priority.NORMAL, "c", None,
                 None, None, None, at)


WAS = {"1": "running", "2": "pending", "3": "pending"}  # what a cancel left, by task


def fold(kinds: list[tuple[str, str]], state: dict[str, Any] | None = None) -> dict[str, Any]:
    state = {} if state is None else state
    for kind, task in kinds:
        fold_activity(state, event(kind, task, **({"was": WAS[task]}
                                                   if kind == "cancelled" else {})))
    return state


def test_open_tasks_move_by_status_and_ended_ones_are_counted() -> None:
    state = fold([("created", "1"), ("created", "2"), ("started", "1"), ("created", "3"),
                  ("started", "2"), ("retrying", "2"), ("succeeded", "1"), ("cancelled", "3")])
    view = AgentActivity().view("a", state["a"])
    assert view["tasks"] == {"pending": 1, "running": 0, "succeeded": 1, "failed": 0,
                             "cancelled": 1}
    assert state["a"]["tasks"] == {"pending": 1, "running": 0}
    assert view["last_run"]["task_id"] == "2" and view["last_run"]["status"] == "running"
    assert view["events"] == 8


def test_the_last_run_ends_with_its_task() -> None:
    state = fold([("created", "1"), ("started", "1"), ("failed", "1")])
    assert state["a"]["last_run"]["status"] == "failed"
    assert state["a"]["last_run"]["ended_at"] == T0.isoformat()
    # an older task ending later does not rewrite the last run
    state = fold([("started", "1"), ("started", "2"), ("succeeded", "1")])
    assert state["a"]["last_run"] == {"task_id": "2", "status": "running",
                                      "started_at": T0.isoformat(), "ended_at": None}


def test_an_event_of_another_kind_only_counts() -> None:
    state = fold([("created", "1"), ("heartbeat", "1")])
    assert state["a"]["tasks"] == {"pending": 1, "running": 0}
    assert state["a"]["events"] == 2


def test_an_agents_value_stays_small_whatever_its_backlog() -> None:
    # 20,000 tasks submitted, 500 of them running: counts, not ids
    state = fold([("created", str(n)) for n in range(20_000)])
    fold([("started", str(n)) for n in range(500)], state)
    assert state["a"]["tasks"] == {"pending": 19_500, "running": 500}
    assert len(json.dumps(state)) < 400


def test_a_cancel_leaves_the_status_it_names() -> None:
    state = fold([("created", "1"), ("created", "2"), ("started", "1"), ("cancelled", "1")])
    assert state["a"]["tasks"] == {"pending": 1, "running": 0}
    fold([("cancelled", "2")], state)
    assert state["a"]["tasks"] == {"pending": 0, "running": 0}
    assert state["a"]["ended"]["cancelled"] == 2
    # a cancel from before events named it: from pending while any, else from running
    for kinds, left in (([("created", "9"), ("created", "8"), ("started", "9")],
                         {"pending": 0, "running": 1}),
                        ([("created", "9"), ("started", "9")], {"pending": 0, "running": 0})):
        older = fold(kinds)
        fold_activity(older, event("cancelled", "9"))
        assert older["a"]["tasks"] == left, kinds


def test_counts_never_go_below_zero() -> None:
    # a log whose oldest events retention deleted starts mid-way
    state = fold([("started", "1"), ("succeeded", "1"), ("started", "2"), ("failed", "2")])
    assert state["a"]["tasks"] == {"pending": 0, "running": 0}
    assert state["a"]["ended"] == {"succeeded": 1, "failed": 1, "cancelled": 0}


def test_a_state_of_open_task_ids_becomes_counts() -> None:
    # as folded before counts were kept
    old = {"a": {"open": {"1": "pending", "2": "running", "3": "pending"},
                 "ended": {"succeeded": 4, "failed": 0, "cancelled": 0}, "last_run": None,
                 "events": 9, "last_event_at": T0.isoformat()}}
    assert AgentActivity().view("a", old["a"])["tasks"]["pending"] == 2
    fold([("started", "1")], old)
    assert "open" not in old["a"] and old["a"]["tasks"] == {"pending": 1, "running": 2}
    assert AgentActivity().view("a", old["a"])["tasks"] == {
        "pending": 1, "running": 2, "succeeded": 4, "failed": 0, "cancelled": 0}


def test_keys_skip_events_without_an_agent() -> None:
    bare = Event(1, "x", "task.created", "queue", {"task_id": "1"}, Priority.NORMAL, "c",
                 None, None, None, None, T0)
    assert list(AgentActivity().keys(bare)) == []
    assert list(AgentActivity().keys(event("created", "1", agent="b"))) == ["b"]


def test_task_stats_count_in_all_and_by_hour() -> None:
    state: dict[str, Any] = {}
    for kind, at in (("created", T0), ("succeeded", T0), ("failed", T0 + timedelta(minutes=1)),
                     ("created", T0 + timedelta(minutes=1))):
        fold_stats(state, event(kind, "1", at=at))
    assert state["total"] == {"created": 2, "succeeded": 1, "failed": 1}
    assert state["hour:2026-12-05T09"] == {"created": 1, "succeeded": 1}
    assert state["hour:2026-12-05T10"] == {"failed": 1, "created": 1}
    assert TaskStats().view("total", state["total"])["success_rate"] == 0.5
    assert TaskStats().view("x", {"created": 1})["success_rate"] is None


def test_hour_keys_stay_right_past_the_hours_remembered() -> None:
    """Each hour's key is its ISO text however many hours were folded before it (the
    texts remembered are dropped past ``MAX_HOURS`` and made again)."""
    hours = [T0 + timedelta(hours=n, minutes=n % 60) for n in range(MAX_HOURS * 2 + 5)]
    for at in hours + hours[:3]:
        assert hour_key(event("created", "1", at=at)) == "hour:" + at.strftime("%Y-%m-%dT%H")
    assert len(projections._HOURS) <= MAX_HOURS
