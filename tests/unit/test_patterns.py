import pytest

from agentos import patterns


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
    "bad", ["", "alert..x", ".alert", "alert.", "alert cpu", "alert/*", "a.[b]"])
def test_bad_event_globs(bad: str) -> None:
    with pytest.raises(patterns.PatternError):
        patterns.check_event_glob(bad)


@pytest.mark.parametrize("bad", ["", "device", "Device:x", ":x", "device x:y"])
def test_bad_resource_globs(bad: str) -> None:
    with pytest.raises(patterns.PatternError):
        patterns.check_resource_glob(bad)


def test_to_like_escapes_sql_wildcards() -> None:
    assert patterns.to_like("a_b.*") == "a\\_b.%"
    assert patterns.to_like("100%?") == "100\\%_"
