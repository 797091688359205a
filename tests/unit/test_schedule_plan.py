from datetime import UTC, datetime, timedelta

import pytest

from agentos.schedules import MISFIRE_GRACE, Timing, next_tick, plan

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def test_cron_in_a_time_zone_follows_local_time_across_dst() -> None:
    # 02:30 local every day; Paris moves to summer time on 2026-03-29
    t = Timing(cron="30 9 * * *", timezone="Europe/Paris")
    first = next_tick(t, T0, T0)
    second = next_tick(t, first, T0)  # type: ignore[arg-type]
    assert first == datetime(2026, 3, 29, 7, 30, tzinfo=UTC)  # 09:30 CEST = 07:30 UTC
    assert second == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
    assert next_tick(Timing(cron="30 9 * * *"), T0, T0) == datetime(2026, 3, 29, 9, 30,
                                                                      tzinfo=UTC)


def test_interval_ticks_stay_on_their_grid() -> None:
    t = Timing(interval_s=60)
    assert next_tick(t, T0 + timedelta(seconds=61), T0) == T0 + timedelta(seconds=120)
    assert next_tick(t, T0 - timedelta(seconds=5), T0) == T0


def test_one_shot() -> None:
    t = Timing(at=T0)
    assert next_tick(t, T0 - timedelta(seconds=1), T0) == T0
    assert next_tick(t, T0, T0) is None


def test_on_time_tick_fires() -> None:
    p = plan(Timing(interval_s=60), T0, T0 + timedelta(seconds=1), T0, "skip")
    assert p.fire_for == T0 and p.missed == 0 and p.next_run_at == T0 + timedelta(seconds=60)


@pytest.mark.parametrize(("policy", "fires"), [("once", True), ("skip", False)])
def test_missed_ticks_follow_the_policy(policy: str, fires: bool) -> None:
    now = T0 + timedelta(minutes=10) + MISFIRE_GRACE + timedelta(seconds=15)
    p = plan(Timing(interval_s=60), T0, now, T0, policy)
    assert p.missed >= 10
    assert (p.fire_for is not None) is fires
    assert p.next_run_at is not None and p.next_run_at > now


def test_missed_one_shot_with_skip_never_fires() -> None:
    p = plan(Timing(at=T0), T0, T0 + timedelta(hours=1), T0, "skip")
    assert p.fire_for is None and p.next_run_at is None
    p = plan(Timing(at=T0), T0, T0 + timedelta(hours=1), T0, "once")
    assert p.fire_for == T0 and p.next_run_at is None


@pytest.mark.parametrize("fields", [
    {"cron": "not a cron"}, {"cron": "* * * * *", "timezone": "Mars/Olympus"},
    {"interval_s": 0}, {"interval_s": -5}, {}, {"cron": "* * * * *", "interval_s": 5},
    {"at": "2026-01-01T00:00:00"}, {"interval_s": 5, "timezone": "UTC"},
])
def test_bad_timings(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Timing.model_validate(fields)
