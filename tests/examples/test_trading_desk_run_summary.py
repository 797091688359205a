"""trading_desk's run_summary: running while its last event is recent, else stopped
(worked out when read, so a desk that went quiet shows stopped without a new event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentos.events import Event
from examples.trading_desk.projections import RUNNING_WITHIN, RunSummary


def event(type: str, at: datetime) -> Event:
    return Event(seq=1, id="e", type=type, source="desk", payload={
        "run_id": "paper-1", "mode": "paper"}, priority="normal", correlation_id="c",
        causation_id=None, run_id=None, subject=None, dedup_key=None, created_at=at)


def test_a_desk_is_running_while_its_last_event_is_recent_then_stopped() -> None:
    summary, state = RunSummary(), {}
    now = datetime.now(UTC)
    summary.apply(state, event("intent", now - RUNNING_WITHIN - timedelta(minutes=1)))
    assert summary.view("paper-1", state["paper-1"])["status"] == "stopped"
    summary.apply(state, event("fill", now))
    seen = summary.view("paper-1", state["paper-1"])
    assert seen["status"] == "running" and seen["mode"] == "paper"
    assert seen["events"]["intent"] == seen["events"]["fill"] == 1
