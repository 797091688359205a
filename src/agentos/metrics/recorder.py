"""The in-process buffer of metric samples, and its flush into rollups.

``count``, ``gauge`` and ``observe`` only update a dict entry for (series, minute):
no I/O, a microsecond or two. ``flush`` writes everything buffered since the last in
one transaction of four statements: the series not made yet, the rollups of each
(series, minute) and (series, hour), the histogram bucket counts, and the series'
lifetime totals. Each process runs ``run_flusher`` (every ``FLUSH_INTERVAL``, and once more as
it stops); a flush that fails keeps its samples for the next, those of the last
``KEEP_UNWRITTEN_S`` only: a database that refuses them for longer (down, or refusing
these very samples) costs the oldest minutes, never a buffer that stops draining.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentos.aio import wait_wakeup
from agentos.errors import InvalidInput
from agentos.metrics import buckets
from agentos.store import Store
from agentos.store import metrics as store_metrics

log = logging.getLogger("agentos.metrics")

KINDS = ("counter", "gauge", "histogram")
RESOLUTIONS = (60, 3600)  # seconds: the rollups kept (per minute, per hour)
FLUSH_INTERVAL = 5.0  # seconds between flushes
MAX_KEYS = 100_000  # buffered (series, minute) entries beyond which samples are dropped
KEEP_UNWRITTEN_S = 600  # seconds: a failed flush keeps the minutes this recent for the next
MAX_TAGS = 16
NAME = re.compile(r"^[a-z][a-z0-9_.]{0,199}$")
TAG_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_TAG_VALUE = 200

Tags = tuple[tuple[str, str], ...]


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"metric name {str(name)[:80]!r} must match {NAME.pattern}",
                           code="bad_metric_name")


def validate_tags(tags: Mapping[str, Any]) -> Tags:
    """Tags as a sorted tuple of (key, text value), or ``InvalidInput``."""
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", code="bad_metric_tags")
    out = []
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY.match(key):
            raise InvalidInput(f"tag key {str(key)[:80]!r} must match {TAG_KEY.pattern}",
                               code="bad_metric_tags")
        text = value if isinstance(value, str) else str(value)
        if not 0 < len(text) <= MAX_TAG_VALUE or "\x00" in text:
            raise InvalidInput(f"tag {key}'s value must be 1-{MAX_TAG_VALUE} characters",
                               code="bad_metric_tags")
        out.append((key, text))
    return tuple(sorted(out))


def tags_key(tags: Tags) -> str:
    """The canonical text of a series' tags: ``k=v,k2=v2`` (sorted)."""
    return ",".join(f"{k}={v}" for k, v in tags)


@dataclass(slots=True)
class Agg:
    """What a (series, bucket) saw: count, sum, min, max, last, histogram counts."""

    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    last: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, value: float, histogram: bool) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.last = value
        if histogram:
            i = buckets.index(value)
            self.hist[i] = self.hist.get(i, 0) + 1

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.last = other.last
        for i, n in other.hist.items():
            self.hist[i] = self.hist.get(i, 0) + n


Key = tuple[str, str, Tags, int]  # name, kind, tags, minute (epoch s)


def add(into: dict[Key, Agg], kind: str, name: str, value: float, tags: Tags,
        at: float) -> None:
    """Add a sample (tags already valid and sorted) to its minute's aggregate in
    ``into``: what a batch written by ``write_in`` is made of."""
    key = (name, kind, tags, int(at // 60 * 60))
    agg = into.get(key)
    if agg is None:
        agg = into[key] = Agg()
    agg.add(value, kind == "histogram")


class Recorder:
    """One process's buffer for one store (``of(store)``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._buffer: dict[Key, Agg] = {}
        self._kinds: dict[str, str] = {}  # name -> kind, as first used here
        # (name, tags as given) validated already -> the tags sorted
        self._checked: dict[tuple[str, Any], Tags] = {}
        self.dropped = 0  # samples refused (the buffer full) or never written (KEEP_UNWRITTEN_S)
        self._lock = asyncio.Lock()

    # -- recording ------------------------------------------------------

    def count(self, name: str, value: float = 1.0, tags: Mapping[str, Any] | None = None,
              at: float | None = None) -> None:
        """Add ``value`` to a counter."""
        self.record("counter", name, value, tags, at)

    def gauge(self, name: str, value: float, tags: Mapping[str, Any] | None = None,
              at: float | None = None) -> None:
        """Set a gauge."""
        self.record("gauge", name, value, tags, at)

    def observe(self, name: str, value: float, tags: Mapping[str, Any] | None = None,
                at: float | None = None) -> None:
        """Add a sample to a histogram (durations, sizes: percentiles come from these)."""
        self.record("histogram", name, value, tags, at)

    def record(self, kind: str, name: str, value: float, tags: Mapping[str, Any] | None,
               at: float | None = None) -> None:
        """One sample (``at``: epoch seconds, now by default)."""
        frozen = tuple(tags.items()) if tags else ()
        sorted_tags = self._checked.get((name, frozen))
        if sorted_tags is None:
            self._check(kind, name, tags or {})
            sorted_tags = validate_tags(tags or {})
            if len(self._checked) < MAX_KEYS:
                self._checked[(name, frozen)] = sorted_tags
        elif self._kinds[name] != kind:
            self._check(kind, name, tags or {})
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise InvalidInput(f"metric {name}: a value must be a finite number",
                               code="bad_metric_value")
        minute = int((time.time() if at is None else at) // 60 * 60)
        key = (name, kind, sorted_tags, minute)
        agg = self._buffer.get(key)
        if agg is None:
            if len(self._buffer) >= MAX_KEYS:
                self.dropped += 1
                return
            agg = self._buffer[key] = Agg()
        agg.add(float(value), kind == "histogram")

    def check(self, kind: str, name: str, tags: Mapping[str, Any]) -> None:
        """Refuse (``InvalidInput``) a sample ``record`` would refuse, recording nothing."""
        self._check(kind, name, tags)

    def _check(self, kind: str, name: str, tags: Mapping[str, Any]) -> None:
        validate_name(name)
        validate_tags(tags)
        if kind not in KINDS:
            raise InvalidInput(f"a metric is a {', '.join(KINDS)}, not {kind[:20]!r}",
                               code="bad_metric_kind")
        known = self._kinds.setdefault(name, kind)
        if known != kind:
            raise InvalidInput(f"metric {name} is a {known}, not a {kind}",
                               code="metric_kind_conflict")

    # -- flushing -------------------------------------------------------

    def pending(self) -> int:
        """Buffered (series, minute) entries."""
        return len(self._buffer)

    async def flush(self) -> int:
        """Write what is buffered; returns the (series, minute) entries written."""
        async with self._lock:
            taken, self._buffer = self._buffer, {}
            if not taken:
                return 0
            try:
                await self._write(taken)
            except Exception:
                self._put_back(taken)
                raise
            return len(taken)

    def _put_back(self, taken: dict[Key, Agg]) -> None:
        """A failed flush's entries back in the buffer, before what came meanwhile;
        those older than ``KEEP_UNWRITTEN_S`` are dropped (counted in ``dropped``)."""
        oldest = time.time() - KEEP_UNWRITTEN_S
        lost = 0
        for key, agg in taken.items():
            if key[3] < oldest:
                lost += agg.count
                continue
            mine = self._buffer.setdefault(key, Agg())
            agg.merge(mine)
            self._buffer[key] = agg
        if lost:
            self.dropped += lost
            log.warning("%d metric samples older than %d s dropped: not written", lost,
                        KEEP_UNWRITTEN_S, extra={"action": "metrics_dropped"})

    async def _write(self, taken: dict[Key, Agg]) -> None:
        await write(self.store, taken)


async def write(store: Store, taken: dict[Key, Agg]) -> None:
    """Write aggregated samples in one transaction."""
    async with store.write() as conn:
        await write_in(conn, taken)
        store.nothing_changed(conn)  # measurements, not a change worth an audit row


async def write_in(conn: Any, taken: dict[Key, Agg]) -> None:
    """Write aggregated samples within the caller's transaction: the series not made
    yet, then rollups, histogram counts and totals, each naming its series by name and
    tags (``store.metrics``): no series id is kept between transactions."""
    series: dict[tuple[str, str], dict[str, Any]] = {}
    per_resolution: dict[tuple[str, str, int, int], Agg] = {}  # name, tags_key, res, bucket
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for (name, kind, tags, minute), agg in taken.items():
        key = (name, tags_key(tags))
        if key not in series:
            series[key] = {"name": name, "kind": kind, "tags": dict(tags), "tags_key": key[1],
                           "agent": dict(tags).get("agent")}
            totals[key] = {"name": name, "kind": kind, "tags_key": key[1], "n": 0,
                           "total": 0.0, "last": None, "at": -1}
        for resolution in RESOLUTIONS:
            bucket = minute - minute % resolution
            per_resolution.setdefault((*key, resolution, bucket), Agg()).merge(agg)
        total = totals[key]
        total["n"] += agg.count
        total["total"] += agg.sum
        if minute >= total["at"]:
            total["last"], total["at"] = agg.last, minute
    await store_metrics.ensure_series(conn, list(series.values()))

    def named(name: str, tags_text: str) -> dict[str, Any]:
        return {"name": name, "kind": series[(name, tags_text)]["kind"], "tags_key": tags_text}

    await store_metrics.upsert_rollups(conn, [
        {**named(name, tk), "resolution": res, "bucket": bucket, "count": a.count,
         "sum": a.sum, "min": a.min, "max": a.max, "last": a.last}
        for (name, tk, res, bucket), a in per_resolution.items()])
    await store_metrics.upsert_histograms(conn, [
        {**named(name, tk), "resolution": res, "bucket": bucket, "idx": i, "count": n}
        for (name, tk, res, bucket), a in per_resolution.items() for i, n in a.hist.items()])
    found = await store_metrics.add_totals(conn, list(totals.values()))
    if found < len(totals):  # the rows of those series were left out too
        log.warning("samples of %d series dropped: each is stored as another kind of metric",
                    len(totals) - found, extra={"action": "metric_kind_conflict"})


_recorders: weakref.WeakKeyDictionary[Store, Recorder] = weakref.WeakKeyDictionary()


def of(store: Store) -> Recorder:
    """This process's recorder of ``store``."""
    found = _recorders.get(store)
    if found is None:
        found = _recorders[store] = Recorder(store)
    return found


async def flush_all(store: Store) -> None:
    """Flush this process's recorder of ``store`` (at shutdown)."""
    recorder = _recorders.get(store)
    if recorder is not None:
        try:
            await recorder.flush()
        except Exception:
            log.exception("metrics not flushed", extra={"action": "metrics_flush_failed"})


async def run_flusher(store: Store, stop: asyncio.Event,
                      interval: float = FLUSH_INTERVAL) -> None:
    """Flush every ``interval`` until ``stop`` is set, then once more."""
    recorder = of(store)
    while not stop.is_set():
        await wait_wakeup(stop, interval)
        try:
            await recorder.flush()
        except Exception:
            log.exception("metrics flush failed; kept for the next",
                          extra={"action": "metrics_flush_failed"})
    await flush_all(store)
