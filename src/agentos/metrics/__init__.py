"""Metrics (SPEC §2.9): counters, gauges and histograms with tags, kept as time-bucketed
rollups (per minute and per hour: count, sum, min, max, last, and log-scale histogram
bucket counts), never one row per sample.

    recorder.py    the in-process buffer handlers and the server write to; flushed in
                   batches (every few seconds and at shutdown), one upsert per series
                   and bucket, never a round trip per sample
    automatic.py   task outcomes, durations, queue wait and lock waits, folded from the
                   event log (and the attempt records) by a consumer, off the hot path
    query.py       ranges, buckets and aggregations over the rollups; retention
    exposition.py  GET /metrics in Prometheus text format (prometheus-client)
"""

from agentos.metrics.recorder import (
    KINDS,
    Recorder,
    flush_all,
    of,
    run_flusher,
    validate_name,
    validate_tags,
)

__all__ = ["KINDS", "Recorder", "flush_all", "of", "run_flusher", "validate_name",
           "validate_tags"]
