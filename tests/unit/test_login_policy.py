"""The failed-login policy: when answers slow down, when failures stop counting."""

from datetime import UTC, datetime, timedelta

import pytest

from agentos.logins import Policy, counted, delay

POLICY = Policy(slow_after=3, max_failures=10, lockout_s=300, max_delay_s=2.0, window_s=900,
                base_delay_s=0.25)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("failures,expected", [
    (0, 0.0), (2, 0.0), (3, 0.25), (4, 0.5), (5, 1.0), (6, 2.0), (7, 2.0), (50, 2.0)])
def test_delay_doubles_from_slow_after_up_to_the_cap(failures: int, expected: float) -> None:
    assert delay(POLICY, failures) == expected


@pytest.mark.parametrize("ago_s,locked_for_s,expected", [
    (10, None, 7),  # recent failures count
    (899, None, 7),
    (901, None, 0),  # a quiet window forgets them
    (10, 60, 7),  # still locked: they count
    (10, -1, 0),  # the lockout is over: start again, never locked for good
])
def test_failures_count_until_the_window_or_the_lockout_ends(
        ago_s: float, locked_for_s: float | None, expected: int) -> None:
    locked = NOW + timedelta(seconds=locked_for_s) if locked_for_s is not None else None
    assert counted(POLICY, 7, NOW - timedelta(seconds=ago_s), locked, NOW) == expected
