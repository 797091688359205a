"""The failed-login policy: when answers slow down (the counting itself is
tests/api/test_logins.py and tests/crash/test_login_lockout.py)."""

import pytest

from agentos.logins import Policy, delay

POLICY = Policy(slow_after=3, max_failures=10, lockout_s=300, max_delay_s=2.0, window_s=900,
                base_delay_s=0.25)


@pytest.mark.parametrize("failures,expected", [
    (0, 0.0), (2, 0.0), (3, 0.25), (4, 0.5), (5, 1.0), (6, 2.0), (7, 2.0), (50, 2.0)])
def test_delay_doubles_from_slow_after_up_to_the_cap(failures: int, expected: float) -> None:
    assert delay(POLICY, failures) == expected
