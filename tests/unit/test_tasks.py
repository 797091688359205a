"""The pure task rules: transitions, backoff with jitter, retry decisions."""

import random
from datetime import timedelta

import pytest

from agentos import tasks
from agentos.errors import Conflict
from agentos.tasks import Backoff, Status


def test_transitions_table_walked_exhaustively() -> None:
    for action, allowed in tasks.TRANSITIONS.items():
        for status in Status:
            if status in allowed:
                tasks.check(status, action, "t")
            else:
                with pytest.raises(Conflict):
                    tasks.check(status, action, "t")
    # a final task only moves again by an operator's retry
    for status in (s for s in Status if s.final):
        assert [a for a, allowed in tasks.TRANSITIONS.items() if status in allowed] in (
            [], ["retry"])


def test_backoff_without_jitter_grows_then_caps() -> None:
    b = Backoff(initial_s=1, max_s=10, multiplier=3, jitter=False)
    assert [b.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 3, 9, 10]


def test_backoff_jitter_stays_within_bounds_and_varies() -> None:
    b = Backoff(initial_s=2, max_s=60, multiplier=2, jitter=True)
    rng = random.Random(7)
    for failures, full in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)):
        delays = [b.delay(failures, rng).total_seconds() for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)  # "equal jitter": half to all
        assert len(set(delays)) > 150  # really random, not one value
        assert max(delays) - min(delays) > full / 4  # spread over the range
    # the jittered gaps still grow: the lowest of attempt n+1 is the highest of attempt n
    assert b.delay(2, random.Random(0)) >= timedelta(seconds=2)


def test_after_failure_retries_then_dead_letters() -> None:
    b = Backoff(initial_s=1, jitter=False)
    assert tasks.after_failure(1, 2, b) == tasks.Decision(Status.SCHEDULED, timedelta(seconds=1))
    assert tasks.after_failure(2, 2, b) == tasks.Decision(Status.SCHEDULED, timedelta(seconds=2))
    assert tasks.after_failure(3, 2, b) == tasks.Decision(Status.FAILED, None)
    assert tasks.after_failure(1, 5, b, retryable=False) == tasks.Decision(Status.FAILED, None)


def test_backoff_from_limits() -> None:
    assert Backoff.from_limits({}) == Backoff()
    assert Backoff.from_limits({"backoff": {"initial_s": 0.5, "jitter": False}}) == Backoff(
        initial_s=0.5, jitter=False)
