"""The built-in projections' folds: pure functions of (state, event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agentos.events import Event, Priority
from agentos.projections import AgentActivity, TaskStats, fold_activity, fold_stats

T0 = datetime(2026, 12, 5, 9, 59, 30, tzinfo=UTC)
_seq = iter(range(1, 10_000))


def event(kind: str, task: str, agent: str = "a", at: datetime = T0) -> Event:
    return Event(next(_seq), f"e{task}{kind}", f"task.{kind}", "queue",
                 {"task_id": task, "agent": agent}, Priority.NORMAL, "c", None, None, None,
                 None, at)


def fold(kinds: list[tuple[str, str]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for kind, task in kinds:
        fold_activity(state, event(kind, task))
    return state


def test_open_tasks_move_by_status_and_ended_ones_are_counted() -> None:
    state = fold([("created", "1"), ("created", "2"), ("started", "1"), ("created", "3"),
                  ("started", "2"), ("retrying", "2"), ("succeeded", "1"), ("cancelled", "3")])
    view = AgentActivity().view("a", state["a"])
    assert view["tasks"] == {"pending": 1, "running": 0, "succeeded": 1, "failed": 0,
                             "cancelled": 1}
    assert state["a"]["open"] == {"2": "pending"}
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
    assert state["a"]["open"] == {"1": "pending"} and state["a"]["events"] == 2


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
