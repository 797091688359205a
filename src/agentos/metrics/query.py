"""Metric queries over the rollups: a range, an optional bucket width, an aggregation,
tags to match and a tag to group by; and retention.

A range is read at the coarsest resolution that answers it exactly: with a bucket of
whole hours from the hourly rollups, else from the per-minute ones; without a
bucket (one value for the range), the whole hours inside it from the hourly rollups
and its ragged ends from the per-minute ones. So a p95 over a day reads 24 hourly
histograms, not 1,440 minutes. A range reaching past what a resolution keeps is
refused (``range_beyond_retention``), unless its ends can be read at the hour.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agentos.errors import InvalidInput, NotFound
from agentos.metrics import buckets
from agentos.metrics.recorder import validate_name
from agentos.store import Store
from agentos.store import metrics as store_metrics

MINUTE, HOUR = 60, 3600
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "last", "rate", "p50", "p90", "p95",
                "p99")
Aggregation = Literal["count", "sum", "avg", "min", "max", "last", "rate", "p50", "p90",
                      "p95", "p99"]
MAX_POINTS = 10_000  # buckets one answer may hold
# the metrics the system records by itself (metrics.automatic, telemetry): known before
# their first sample, so a query of one answers with no points rather than 404
BUILT_IN = frozenset({"tasks.ended", "task.duration_ms", "task.queue_wait_ms", "lock.wait_ms",
                      "queue.depth", "llm.calls", "llm.tokens", "llm.cost_usd"})
_BUCKET = re.compile(r"^(\d{1,6})([mhd])$")
_UNIT = {"m": MINUTE, "h": HOUR, "d": 86_400}


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept (seconds)."""

    minute_s: float = 7 * 86_400
    hour_s: float = 90 * 86_400

    @classmethod
    def from_settings(cls, settings: Any) -> Retention:
        return cls(settings.metrics_retention_1m_days * 86_400,
                   settings.metrics_retention_1h_days * 86_400)

    def of(self, resolution: int) -> float:
        return self.minute_s if resolution == MINUTE else self.hour_s


@dataclass(frozen=True)
class Segment:
    resolution: int
    start: int  # epoch s, inclusive
    end: int  # epoch s, exclusive


def parse_bucket(text: str | None) -> int | None:
    """``1m``, ``15m``, ``1h``, ``1d`` as seconds (a whole number of minutes)."""
    if text is None or text == "":
        return None
    match = _BUCKET.match(text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(f"bucket {text[:20]!r} must be like 1m, 15m, 1h or 1d",
                           code="bad_bucket")
    return int(match.group(1)) * _UNIT[match.group(2)]


def parse_tags(text: str | None) -> dict[str, str]:
    """``agent:qa,outcome:ok`` as a mapping."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"tag filter {item[:80]!r} must be KEY:VALUE",
                               code="bad_metric_tags")
        out[key.strip()] = value.strip()
    return out


def plan(start: int, end: int, bucket: int | None, now: int,
         retention: Retention) -> tuple[list[Segment], int, int]:
    """The segments to read for [start, end) (epoch seconds); and the range as read
    (ends moved to what the rollups can answer)."""
    if end <= start:
        raise InvalidInput("to must be after from", code="bad_range")
    if bucket is not None:
        resolution = HOUR if bucket % HOUR == 0 else MINUTE
        start, end = start - start % bucket, -(-end // bucket) * bucket
        if (end - start) // bucket > MAX_POINTS:
            raise InvalidInput(f"at most {MAX_POINTS} buckets: widen the bucket or narrow "
                               "the range", code="too_many_buckets")
        _check_kept(start, resolution, now, retention)
        return [Segment(resolution, start, end)], start, end
    start, end = start - start % MINUTE, -(-end // MINUTE) * MINUTE
    minutes_kept = now - retention.of(MINUTE)
    first_hour, last_hour = -(-start // HOUR) * HOUR, end - end % HOUR
    if first_hour >= last_hour:  # no whole hour inside: minutes only
        if start < minutes_kept:  # read at the hour where the minutes are gone
            start, end = start - start % HOUR, -(-end // HOUR) * HOUR
            _check_kept(start, HOUR, now, retention)
            return [Segment(HOUR, start, end)], start, end
        return [Segment(MINUTE, start, end)], start, end
    if start < minutes_kept:
        start = first_hour = start - start % HOUR
    if end < minutes_kept:
        end = last_hour = -(-end // HOUR) * HOUR
    _check_kept(start, HOUR if start == first_hour else MINUTE, now, retention)
    segments = [Segment(MINUTE, start, first_hour), Segment(HOUR, first_hour, last_hour),
                Segment(MINUTE, last_hour, end)]
    return [s for s in segments if s.end > s.start], start, end


def _check_kept(start: int, resolution: int, now: int, retention: Retention) -> None:
    if start < now - retention.of(resolution):
        kept = timedelta(seconds=retention.of(resolution))
        raise InvalidInput(
            f"the range starts before what {'1m' if resolution == MINUTE else '1h'} rollups "
            f"keep ({kept.days} days)", code="range_beyond_retention",
            details={"resolution": resolution, "kept_s": retention.of(resolution)})


def aggregate(agg: str, kind: str, rows: list[dict[str, Any]], hist: list[tuple[int, int]],
              width_s: float) -> float | None:
    """One value from merged rollup rows (and histogram counts) of one bucket."""
    count = sum(int(r["count"]) for r in rows)
    if count == 0:
        return None
    total = sum(float(r["sum"]) for r in rows)
    if agg == "count":
        return float(count)
    if agg == "sum":
        return total
    if agg == "avg":
        return total / count
    if agg == "min":
        return min(float(r["min"]) for r in rows)
    if agg == "max":
        return max(float(r["max"]) for r in rows)
    if agg == "last":
        latest = max(r["latest"] for r in rows)
        if kind == "gauge":  # a gauge per series: the sum of each one's latest value
            return sum(float(r["last"]) for r in rows if r["latest"] == latest)
        return float(next(r["last"] for r in rows if r["latest"] == latest))
    if agg == "rate":  # per second (a counter's sum, else the samples)
        return (total if kind == "counter" else count) / width_s
    q = int(agg[1:]) / 100
    return buckets.percentile(hist, q, min(float(r["min"]) for r in rows),
                              max(float(r["max"]) for r in rows))


@dataclass(frozen=True)
class Query:
    name: str
    start: datetime | None = None
    end: datetime | None = None
    bucket: str | None = None
    agg: str = "avg"
    tags: Mapping[str, str] | None = None
    group_by: str | None = None


async def run(store: Store, q: Query, retention: Retention) -> dict[str, Any]:
    """Answer a metric query: a point per bucket (or one for the range) per group."""
    validate_name(q.name)
    if q.agg not in AGGREGATIONS:
        raise InvalidInput(f"unknown aggregation {q.agg[:20]!r}: use one of "
                           f"{', '.join(AGGREGATIONS)}", code="bad_aggregation")
    now = int(time.time())
    # the range is [from, to): a to of "now" keeps this second, and so this minute
    end = math.ceil(q.end.timestamp()) if q.end else now + 1
    start = int(q.start.timestamp()) if q.start else end - HOUR
    width = parse_bucket(q.bucket)
    segments, start, end = plan(start, end, width, now, retention)
    async with store.read() as conn:
        series = await store_metrics.series_named(conn, q.name)
        if not series and q.name not in BUILT_IN:
            raise NotFound(f"no metric named {q.name}", code="metric_not_found",
                           details={"name": q.name})
        wanted = q.tags or {}
        series = [s for s in series if all(str(s["tags"].get(k)) == v
                                           for k, v in wanted.items())]
        kinds = {s["kind"] for s in series}
        if q.agg.startswith("p") and kinds - {"histogram"}:
            raise InvalidInput(f"{q.agg} needs a histogram; {q.name} is a "
                               f"{', '.join(sorted(kinds))}", code="bad_aggregation")
        ids = [int(s["id"]) for s in series]
        rows: list[dict[str, Any]] = []
        hists: list[tuple[int | None, int, int, int]] = []
        for seg in segments:
            if not ids:
                break
            grouping = width or (seg.end - seg.start)
            found = await store_metrics.rollups(conn, ids, seg.resolution, seg.start, seg.end,
                                                grouping)
            if width is None:  # one value for the whole range
                for r in found:
                    r["grp"] = start
            rows += found
            if q.agg.startswith("p"):
                found_h = await store_metrics.histograms(
                    conn, ids, seg.resolution, seg.start, seg.end, grouping,
                    by_series=q.group_by is not None)  # else summed by the database
                if width is None:
                    found_h = [(sid, start, i, n) for sid, _, i, n in found_h]
                hists += found_h
    group_of = {int(s["id"]): (str(s["tags"].get(q.group_by)) if q.group_by else None)
                for s in series}
    kind = next(iter(kinds)) if len(kinds) == 1 else "counter"
    points: dict[str | None, dict[int, list[dict[str, Any]]]] = {}
    for r in rows:
        points.setdefault(group_of[int(r["series_id"])], {}).setdefault(
            int(r["grp"]), []).append(r)
    hist_of: dict[tuple[str | None, int], list[tuple[int, int]]] = {}
    for sid, grp, idx, n in hists:
        key = (group_of[int(sid)] if sid is not None else None, int(grp))
        counts = hist_of.get(key)
        if counts is None:
            counts = hist_of[key] = []
        counts.append((int(idx), int(n)))
    span = float(width or (end - start))
    out = []
    for group in sorted(points, key=lambda g: "" if g is None else g):
        by_bucket = points[group]
        values = [{"at": _iso(b), "value": _finite(aggregate(
            q.agg, kind, by_bucket[b], hist_of.get((group, b), []), span))}
            for b in sorted(by_bucket)]
        out.append({"group": group, "points": values})
    return {"name": q.name, "kind": kind if series else None, "agg": q.agg,
            "tags": dict(wanted), "group_by": q.group_by, "from": _iso(start), "to": _iso(end),
            "bucket": q.bucket, "resolutions": sorted({s.resolution for s in segments}),
            "series": len(series), "groups": out}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


async def sweep(store: Store, retention: Retention) -> int:
    """Delete rollups older than their resolution keeps; how many rows went."""
    now = int(time.time())
    done = 0
    for resolution in (MINUTE, HOUR):
        async with store.write() as conn:
            done += await store_metrics.sweep(conn, resolution,
                                              int(now - retention.of(resolution)))
            store.nothing_changed(conn)
    return done
