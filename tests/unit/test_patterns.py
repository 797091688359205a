import pytest
from pydantic import ValidationError
from sqlalchemy import Delete, Insert

from agentos import patterns
from agentos.documents import Document, errors_from
from agentos.events import EventIn
from agentos.store import routes


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


def test_the_route_patterns_rewrite_touches_only_the_rows_that_change() -> None:
    """A change to what is published deletes the LIKE patterns no published glob gives
    any more and adds the new ones; a pattern the table holds already stays as it is."""
    [(delete, no_rows), (insert, rows)] = routes.pattern_rewrite(
        ["a.*", "b.x", "a.*"], present=["a.%", "c.x"])
    assert isinstance(delete, Delete) and no_rows == []
    assert list(delete.compile().params.values()) == [["c.x"]]
    assert isinstance(insert, Insert) and rows == [{"type_like": "b.x"}]
    assert routes.pattern_rewrite(["a.*"], present=["a.%"]) == []
    [(first_fill, all_rows)] = routes.pattern_rewrite(["b.x", "a.*"])  # an empty table
    assert isinstance(first_fill, Insert)
    assert all_rows == [{"type_like": "a.%"}, {"type_like": "b.x"}]
