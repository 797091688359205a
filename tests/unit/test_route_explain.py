"""Where an event would go (pure): each trigger matches, or says the first condition that
failed; agents that match come first; a matching trigger shows the task it would make."""

from datetime import UTC, datetime

from agentos.events import EventIn
from agentos.explain.event import verdicts
from agentos.router import Routable

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def agents() -> list[Routable]:
    return [
        Routable("zeta", "1.0.0", [
            {"event": "alert.*", "filter": {"severity": ["high", "critical"]}, "priority": 8,
             "input": {"device": "{payload.device_id}", "kind": "{event.type}"}},
            {"event": "alert.*", "capability": "paging"},
        ], {"paging": False}),
        Routable("alpha", "2.0.0", [{"event": "qa.run.*"}], {}),
        Routable("quiet", "1.0.0", [], {}),
        Routable("watcher", "1.0.0", [{"event": "task.*"}], {}),
    ]


def test_matching_agents_first_with_the_task_they_would_make() -> None:
    found = verdicts(agents(), EventIn(type="alert.cpu", payload={
        "severity": "high", "device_id": "pixel-7"}), NOW)
    assert found["routed_to"] == ["zeta"]
    assert found["summary"] == "alert.cpu would route to zeta"
    assert [a["agent"] for a in found["agents"]] == ["zeta", "alpha", "quiet", "watcher"]
    zeta = found["agents"][0]
    first, second = zeta["triggers"]
    assert first["matches"] and first["failed"] is None
    assert first["task"] == {"agent": "zeta", "version": "1.0.0", "priority": 8,
                             "input": {"device": "pixel-7", "kind": "alert.cpu"},
                             "capability": None}
    assert second["failed"] == "capability 'paging' is disabled" and "task" not in second
    assert zeta["summary"] == "trigger 0 fires"


def test_the_first_condition_that_failed() -> None:
    found = verdicts(agents(), EventIn(type="alert.cpu", payload={"severity": "low"}), NOW)
    assert found["routed_to"] == [] and found["summary"] == "alert.cpu would route to no agent"
    by_name = {a["agent"]: a for a in found["agents"]}
    assert [t["failed"] for t in by_name["zeta"]["triggers"]] == [
        "payload severity='low' is not one of ['high', 'critical']",
        "capability 'paging' is disabled"]
    assert by_name["alpha"]["summary"] == \
        "trigger 0: type 'alert.cpu' does not match 'qa.run.*'"
    assert by_name["quiet"]["summary"] == "no triggers" and by_name["quiet"]["routed"] is False
    missing = verdicts(agents(), EventIn(type="alert.cpu"), NOW)["agents"]
    [zeta] = [a for a in missing if a["agent"] == "zeta"]
    assert zeta["triggers"][0]["failed"] == "payload has no 'severity'"


def test_lifecycle_events() -> None:
    own = verdicts(agents(), EventIn(type="task.failed", payload={"agent": "watcher"}), NOW)
    [watcher] = [a for a in own["agents"] if a["agent"] == "watcher"]
    assert watcher["triggers"][0]["failed"] == \
        "task.* events of watcher's own tasks never trigger it"
    other = verdicts(agents(), EventIn(type="task.failed", payload={"agent": "zeta"}), NOW)
    assert other["routed_to"] == ["watcher"]
    [alpha] = [a for a in other["agents"] if a["agent"] == "alpha"]
    assert alpha["triggers"][0]["failed"] == "type 'task.failed' does not match 'qa.run.*'"
