import pytest
from pydantic import ValidationError

from agentos import patterns
from agentos.documents import Document, errors_from
from agentos.events import EventIn


@pytest.mark.parametrize(("glob", "text", "expected"), [
    ("alert.*", "alert.cpu", True),
    ("alert.*", "alert.cpu.high", True),
    ("alert.*", "alerts.cpu", False),
    ("alert.?pu", "alert.cpu", True),
    ("*", "anything.at.all", True),
    ("plan_generated", "plan_generated", True),
    ("plan_generated", "plan_generatedx", False),
    ("a.b", "aXb", False),  # the dot is literal
    ("device:*", "device:pixel-7", True),
])
def test_matches(glob: str, text: str, expected: bool) -> None:
    assert patterns.matches(glob, text) is expected


@pytest.mark.parametrize(
    "bad", ["", "alert..x", ".alert", "alert.", "alert cpu", "alert/*", "a.[b]", "alert.*\n"])
def test_bad_event_globs(bad: str) -> None:
    with pytest.raises(patterns.PatternError):
        patterns.check_event_glob(bad)


@pytest.mark.parametrize("bad", ["", "device", "Device:x", ":x", "device x:y", "device:*\n"])
def test_bad_resource_globs(bad: str) -> None:
    with pytest.raises(patterns.PatternError):
        patterns.check_resource_glob(bad)


def test_to_like_escapes_sql_wildcards() -> None:
    assert patterns.to_like("a_b.*") == "a\\_b.%"
    assert patterns.to_like("100%?") == "100\\%_"


@pytest.mark.parametrize("bad", ["", "a..b", "a.", "has space", "x\n"])
def test_bad_event_types_are_refused_alike_by_both_checks(bad: str) -> None:
    """``check_event_type`` (Python) and ``EventIn.type`` (pydantic-core) agree."""
    with pytest.raises(patterns.PatternError):
        patterns.check_event_type(bad)
    with pytest.raises(ValueError):
        EventIn(type=bad)


def test_a_pattern_mismatch_is_worded_like_the_check() -> None:
    try:
        EventIn(type="a..b")
    except ValidationError as exc:
        [message] = [e["message"] for e in errors_from(exc, Document({"type": "a..b"}))]
    with pytest.raises(patterns.PatternError) as raised:
        patterns.check_event_type("a..b")
    assert message == raised.value.message
