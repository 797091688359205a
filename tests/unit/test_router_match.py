import pytest

from agentos.router import mismatch

TRIGGER = {"event": "alert.*", "filter": {"severity": ["high", "critical"], "device.os": "android"},
           "priority": 8}


@pytest.mark.parametrize(("event_type", "payload", "caps", "reason"), [
    ("alert.cpu", {"severity": "high", "device": {"os": "android"}}, {}, None),
    ("alert.cpu", {"severity": "critical", "device": {"os": "android"}}, {}, None),
    ("qa.run", {"severity": "high", "device": {"os": "android"}}, {}, "does not match"),
    ("alert.cpu", {"severity": "low", "device": {"os": "android"}}, {}, "is not one of"),
    ("alert.cpu", {"device": {"os": "android"}}, {}, "has no 'severity'"),
    ("alert.cpu", {"severity": "high", "device": {"os": "ios"}}, {}, "is not 'android'"),
    ("alert.cpu", {"severity": "high", "device": "android"}, {}, "has no 'device.os'"),
])
def test_trigger_matching(event_type: str, payload: dict[str, object], caps: dict[str, bool],
                          reason: str | None) -> None:
    got = mismatch(TRIGGER, event_type, payload, caps)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


def test_booleans_are_not_numbers() -> None:
    trigger = {"event": "x", "filter": {"flag": 1}}
    assert mismatch(trigger, "x", {"flag": True}, {}) is not None
    assert mismatch(trigger, "x", {"flag": 1}, {}) is None
    assert mismatch({"event": "x", "filter": {"flag": True}}, "x", {"flag": True}, {}) is None


def test_null_false_and_zero_are_apart_and_objects_compare_by_value() -> None:
    def fires(expected: object, value: object) -> bool:
        return mismatch({"event": "x", "filter": {"v": expected}}, "x", {"v": value}, {}) is None

    assert not fires(None, False) and not fires(False, 0) and not fires(None, 0)
    assert fires(None, None) and fires(False, False) and fires(1, 1.0)
    assert fires({"a": [1, "b"]}, {"a": [1, "b"]}) and not fires({"a": 1}, {"a": 2})
    assert not fires({"a": 1}, 1) and not fires(1, {"a": 1})
    assert fires([None, 2], 2) and not fires([None, 2], False)


def test_disabled_capability_blocks_the_trigger() -> None:
    trigger = {"event": "x", "capability": "planning"}
    assert mismatch(trigger, "x", {}, {"planning": True}) is None
    assert "disabled" in (mismatch(trigger, "x", {}, {"planning": False}) or "")


def test_task_lifecycle_events_need_a_trigger_that_names_them() -> None:
    assert mismatch({"event": "*"}, "task.created", {}, {}) is not None
    assert mismatch({"event": "task.failed"}, "task.failed", {}, {}) is None
