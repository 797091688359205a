"""Pure parts of metrics: log-scale buckets and percentiles from merged counts, the
reading plan of a range (resolutions, ragged ends, retention), the fold of events."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from agentos.errors import InvalidInput
from agentos.metrics import buckets, query
from agentos.metrics.automatic import fold
from agentos.metrics.query import HOUR, MINUTE, Retention, Segment, plan


def test_bucket_index_is_within_half_a_bucket() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = 10 ** rng.uniform(-6, 9)
        i = buckets.index(value)
        assert 2 ** (i / 8) <= value * (1 + 1e-12) and value < 2 ** ((i + 1) / 8) * (1 + 1e-12)
        assert abs(buckets.middle(i) - value) / value < 0.045
    assert buckets.index(0) == buckets.index(-5) == buckets.ZERO
    assert buckets.middle(buckets.ZERO) == 0.0


def test_percentiles_of_merged_buckets_match_the_samples() -> None:
    rng = random.Random(11)
    samples = [rng.lognormvariate(3, 1) for _ in range(50_000)]
    halves: list[dict[int, int]] = [{}, {}]
    for n, v in enumerate(samples):  # two rollups of disjoint samples, merged later
        part = halves[n % 2]
        part[buckets.index(v)] = part.get(buckets.index(v), 0) + 1
    merged = [*halves[0].items(), *halves[1].items()]
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        found = buckets.percentile(merged, q, min(samples), max(samples))
        assert found is not None and abs(found - exact) / exact < 0.05, (q, found, exact)
    assert buckets.percentile([], 0.5) is None
    assert buckets.percentile([(buckets.index(100.0), 3)], 0.99, 90.0, 95.0) == 95.0


def test_plan_reads_whole_hours_hourly_and_the_ends_by_minute() -> None:
    now = 1_800_000_000 - 1_800_000_000 % HOUR + 1234
    kept = Retention()
    start, end = now - 24 * HOUR, now
    segments, s, e = plan(start, end, None, now, kept)
    assert (s, e) == (start - start % MINUTE, end - end % MINUTE + MINUTE)
    assert [seg.resolution for seg in segments] == [MINUTE, HOUR, MINUTE]
    assert segments[1].end - segments[1].start == 23 * HOUR
    assert segments[0].end == segments[1].start and segments[1].end == segments[2].start
    # short: minutes only; a bucket of hours: hourly; of minutes: by minute
    assert plan(now - 600, now, None, now, kept)[0] == [
        Segment(MINUTE, now - 600 - (now - 600) % 60, -(-now // 60) * 60)]
    assert plan(start, end, HOUR, now, kept)[0][0].resolution == HOUR
    assert plan(start, end, 300, now, kept)[0][0].resolution == MINUTE
    # older than the minutes keep: the ends are read at the hour
    old = plan(now - 30 * 86_400, now - 29 * 86_400 + 600, None, now, kept)[0]
    assert {seg.resolution for seg in old} == {HOUR}


@pytest.mark.parametrize("args", [
    (100, 100, None),  # empty range
    (0, 1_800_000_000, None),  # before even the hours are kept
    (1_800_000_000 - 30 * 86_400, 1_800_000_000, MINUTE),  # minutes kept 7 days
    (1_800_000_000 - 30 * 86_400, 1_800_000_000, 60 * 5),
    (1_800_000_000 - 8 * 86_400, 1_800_000_000, MINUTE),  # 11,520 buckets: too many
])
def test_plans_refused(args: tuple[int, int, int | None]) -> None:
    with pytest.raises(InvalidInput):
        plan(*args, now=1_800_000_000, retention=Retention())


def test_bucket_and_tag_parsing() -> None:
    assert query.parse_bucket("1m") == 60 and query.parse_bucket("6h") == 21600
    assert query.parse_bucket(None) is None
    for bad in ("0m", "1w", "m", "1.5h", "-1m", "9999999m"):
        with pytest.raises(InvalidInput):
            query.parse_bucket(bad)
    assert query.parse_tags("agent:qa, outcome:ok") == {"agent": "qa", "outcome": "ok"}
    for bad in ("agent", "agent:", ":qa"):
        with pytest.raises(InvalidInput):
            query.parse_tags(bad)


def test_fold_counts_outcomes_durations_and_waits() -> None:
    at = datetime(2026, 12, 6, 10, 0, 30, tzinfo=UTC).timestamp()
    rows = [  # (seq, type, agent, at, duration ms, queue wait ms, lock type, lock wait ms)
        (3, "task.succeeded", "a", at + 3, 950.0, 2000.0, None, None),
        # retried since: the wait is its next attempt's, not known here
        (4, "task.retrying", "a", at + 3, 30.0, None, None, None),
        (5, "lock.acquired", None, at, None, None, "device", 40.0),
        (6, "lock.acquired", None, at, None, None, "device", None),  # no wait: no sample
        (7, "task.started", "a", at, None, None, None, None),  # not an end: ignored
    ]
    taken = fold(rows)
    by_name = {(k[0], k[2]): v for k, v in taken.items()}
    assert by_name[("tasks.ended", (("agent", "a"), ("outcome", "succeeded")))].count == 1
    assert by_name[("tasks.ended", (("agent", "a"), ("outcome", "retried")))].count == 1
    assert by_name[("task.duration_ms", (("agent", "a"), ("outcome", "succeeded")))].sum == 950
    assert by_name[("task.duration_ms", (("agent", "a"), ("outcome", "retried")))].sum == 30
    waits = by_name[("task.queue_wait_ms", (("agent", "a"),))]
    assert waits.count == 1 and waits.sum == 2000
    assert by_name[("lock.wait_ms", (("type", "device"),))].count == 1
    assert {k[3] for k in taken} == {int(at) // 60 * 60}
