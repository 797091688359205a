"""``GET /metrics``: the metrics in Prometheus' text format, through ``prometheus-client``.

Read from the database when scraped, so any server shows the whole installation's:
each series' lifetime totals (a counter as ``agentos_<name>_total``, a gauge's last
value, a histogram as a summary: count, sum, and p50/p90/p99 over the last
``QUANTILE_WINDOW``), the queue's depth per agent and status now, and this process's
cache hit counts. Names take ``agentos_`` and dots become underscores.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentos import cache
from agentos.metrics import buckets
from agentos.store import Store
from agentos.store import metrics as store_metrics

QUANTILE_WINDOW = 15 * 60  # seconds of minute rollups a summary's quantiles cover
QUANTILES = (0.5, 0.9, 0.99)
MAX_SERIES = 20_000  # series one scrape shows
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    return "agentos_" + _BAD.sub("_", name)


class _Snapshot(Collector):
    """What one scrape read, as metric families."""

    def __init__(self, series: list[dict[str, Any]], hists: dict[int, list[tuple[int, int]]],
                 depths: list[tuple[str, str, int]], counters: dict[str, dict[str, int]]
                 ) -> None:
        self.series = series
        self.hists = hists
        self.depths = depths
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        by_name: dict[str, list[dict[str, Any]]] = {}
        for s in self.series:
            by_name.setdefault(s["name"], []).append(s)
        for name, group in sorted(by_name.items()):
            kind = group[0]["kind"]
            labels = sorted({k for s in group for k in s["tags"]})
            base = metric_name(name)
            if kind == "counter":
                family: Metric = CounterMetricFamily(base, f"{name} (counter)", labels=labels)
            elif kind == "gauge":
                family = GaugeMetricFamily(base, f"{name} (gauge)", labels=labels)
            else:
                family = Metric(base, f"{name} (histogram, as a summary)", "summary")
            for s in group:
                if s["kind"] != kind:
                    continue
                values = [str(s["tags"].get(k, "")) for k in labels]
                if kind == "counter":
                    assert isinstance(family, CounterMetricFamily)
                    family.add_metric(values, float(s["total_sum"]))
                elif kind == "gauge":
                    assert isinstance(family, GaugeMetricFamily)
                    if s["last_value"] is not None:
                        family.add_metric(values, float(s["last_value"]))
                else:
                    tags = dict(zip(labels, values, strict=True))
                    counts = self.hists.get(int(s["id"]), [])
                    for q in QUANTILES:
                        value = buckets.percentile(counts, q)
                        if value is not None:
                            family.add_sample(base, {**tags, "quantile": str(q)}, value)
                    family.add_sample(base + "_count", tags, float(s["total_count"]))
                    family.add_sample(base + "_sum", tags, float(s["total_sum"]))
            yield family
        depth = GaugeMetricFamily("agentos_queue_tasks", "unfinished tasks now, by agent and "
                                  "status", labels=["agent", "status"])
        for agent, status, n in self.depths:
            depth.add_metric([agent, status], n)
        yield depth
        hits = CounterMetricFamily("agentos_cache_reads", "this process's cache reads, by "
                                   "kind and result", labels=["kind", "result"])
        for kind, figures in self.counters.items():
            for result, label in (("hits", "hit"), ("misses", "miss")):
                hits.add_metric([kind, label], figures.get(result, 0))
        yield hits


async def render(store: Store) -> bytes:
    """The text a scrape gets."""
    since = int(time.time()) - QUANTILE_WINDOW
    async with store.read() as conn:
        series = await store_metrics.all_series(conn, MAX_SERIES)
        recent = await store_metrics.recent_histograms(conn, since - since % 60)
        depths = await store_metrics.queue_depths(conn)
    hists: dict[int, list[tuple[int, int]]] = {}
    for row in recent:
        hists.setdefault(int(row["series_id"]), []).append((int(row["idx"]),
                                                            int(row["count"])))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(series, hists, depths, cache.counters()))
    return generate_latest(registry)
