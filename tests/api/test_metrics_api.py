"""/api/v1/metrics, /metrics and an agent's summary over HTTP: queries and their bad
input (4xx, nothing written), samples posted by a remote process, the Prometheus text
parsed by prometheus-client's own parser and passed by `promtool check metrics`, HTTP
requests counted. Both backends."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from agentos import metrics
from agentos.api import access
from agentos.api.middleware import AuditScope, BodyLimit, InputGuard, RequestLog
from agentos.metrics import automatic, query
from agentos.store import Store
from tests.api.test_operating_api import publish
from tests.snapshot import snapshot


async def seed(store: Store) -> None:
    rec = metrics.Recorder(store)
    at = time.time() - 120  # read per test: a module constant ages while the suite runs
    for n in range(1, 101):
        rec.observe("job.ms", n, {"agent": "tuner"}, at=at)
    rec.count("job.done", 3, {"agent": "tuner"}, at=at)
    rec.gauge("pool.size", 5, at=at)
    await rec.flush()


async def test_query_and_its_bad_input(api: httpx.AsyncClient, store: Store) -> None:
    await seed(store)
    r = await api.get("/api/v1/metrics", params={"name": "job.ms", "agg": "p95"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "histogram" and body["from"] < body["to"]
    [value] = [p["value"] for p in body["groups"][0]["points"]]
    assert 90 < value < 100
    r = await api.get("/api/v1/metrics", params={"name": "job.done", "agg": "sum",
                                                 "bucket": "1m", "tags": "agent:tuner"})
    assert sum(p["value"] or 0 for p in r.json()["groups"][0]["points"]) == 3
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for params, status, code in [
        ({"name": "job.ms", "agg": "median"}, 400, "bad_aggregation"),  # unknown aggregation
        ({"name": "job.done", "agg": "p99"}, 400, "bad_aggregation"),  # not a histogram
        ({"name": "job.ms", "from": "2020-01-01T00:00:00Z"}, 400, "range_beyond_retention"),
        ({"name": "job.ms", "bucket": "1m", "from": "2026-01-01T00:00:00Z"}, 400, None),
        ({"name": "job.ms", "bucket": "1w"}, 400, "bad_bucket"),
        ({"name": "job.ms", "tags": "agent"}, 400, "bad_metric_tags"),
        ({"name": "job.ms", "from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
         400, "bad_range"),
        ({"name": "Bad Name"}, 400, "bad_metric_name"),
        ({"name": "never.recorded"}, 404, "metric_not_found"),
        ({}, 422, None),
    ]:
        r = await api.get("/api/v1/metrics", params=params)
        assert r.status_code == status, (params, r.text)
        if code:
            assert r.json()["error"]["code"] == code, (params, r.text)
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before
    # a metric the system records by itself is known before its first sample: no points
    for name in sorted(query.BUILT_IN):
        r = await api.get("/api/v1/metrics", params={"name": name, "bucket": "1h",
                                                     "group_by": "agent"})
        assert r.status_code == 200 and r.json()["groups"] == [], (name, r.text)


async def test_samples_posted_by_a_remote_process(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    operator = await as_role("operator")
    samples = [{"name": "remote.jobs", "kind": "counter", "value": 2, "tags": {"host": "h1"}},
               {"name": "remote.ms", "kind": "histogram", "value": 12.5}]
    r = await operator.post("/api/v1/metrics", json={"samples": samples})
    assert r.status_code == 202 and r.json() == {"accepted": 2}
    await metrics.of(store).flush()
    r = await api.get("/api/v1/metrics", params={"name": "remote.jobs", "agg": "sum"})
    assert r.json()["groups"][0]["points"][0]["value"] == 2
    viewer = await as_role("viewer")
    assert (await viewer.post("/api/v1/metrics", json={"samples": samples})).status_code == 403
    for bad in ([{**samples[0], "value": "NaN"}], [{**samples[0], "kind": "meter"}],
                [{**samples[0], "name": "Bad Name"}], [samples[0], {**samples[1],
                                                                    "tags": {"Bad Key": "x"}}],
                [{**samples[0], "kind": "gauge"}], []):
        r = await operator.post("/api/v1/metrics", json={"samples": bad})
        assert 400 <= r.status_code < 500, (bad, r.text)
    await metrics.of(store).flush()  # nothing of the refused batches was kept
    for name, agg, value in (("remote.jobs", "sum", 2), ("remote.ms", "count", 1)):
        r = await api.get("/api/v1/metrics", params={"name": name, "agg": agg})
        assert r.json()["groups"][0]["points"][0]["value"] == value


async def test_prometheus_text_parses(app: FastAPI, api: httpx.AsyncClient,
                                      store: Store) -> None:
    await publish(api)
    await seed(store)
    await api.get("/api/v1/agents/tuner")
    r = await api.post("/api/v1/llm-calls", json={"model": "m-1", "prompt_tokens": 10,
                                                  "completion_tokens": 5, "cost": 0.25,
                                                  "agent": "tuner"})
    assert r.status_code == 201, r.text
    await metrics.of(store).flush()  # the requests above, counted by the middleware
    await automatic.sample_depths(store)
    await automatic.Automatic().catch_up(store)
    r = await api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    exposition = r.text
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    assert families["agentos_job_done"].type == "counter"
    [done] = families["agentos_job_done"].samples
    assert done.value == 3 and done.labels == {"agent": "tuner"}
    summary = families["agentos_job_ms"]
    assert summary.type == "summary"
    by_name = {(s.name, s.labels.get("quantile")): s.value for s in summary.samples}
    assert by_name[("agentos_job_ms_count", None)] == 100
    assert 45 < by_name[("agentos_job_ms", "0.5")] < 55
    assert families["agentos_pool_size"].samples[0].value == 5
    requests = families["agentos_http_requests"]
    assert any(s.labels["route"] == "/api/v1/agents/{name}" and s.labels["status"] == "200"
               for s in requests.samples)
    assert "agentos_queue_tasks" in families and "agentos_cache_reads" in families
    tokens = families["agentos_llm_tokens"]  # the LLM call's, from its record
    assert tokens.type == "counter" and sorted(
        (s.labels["agent"], s.labels["model"], s.labels["type"], s.value)
        for s in tokens.samples if s.name.endswith("_total")) == [
        ("tuner", "m-1", "completion", 5), ("tuner", "m-1", "prompt", 10)]
    [cost] = [s for s in families["agentos_llm_cost_usd"].samples if s.name.endswith("_total")]
    assert cost.value == 0.25 and cost.labels == {"agent": "tuner", "model": "m-1"}
    r = await api.get("/api/v1/metrics", params={"name": "llm.tokens", "agg": "sum",
                                                 "tags": "model:m-1", "group_by": "type"})
    assert r.status_code == 200, r.text
    assert {g["group"]: g["points"][0]["value"] for g in r.json()["groups"]} == {
        "completion": 5, "prompt": 10}
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with anon:
        assert (await anon.get("/metrics")).status_code == 401
    # Prometheus' own parser reads the text (make test installs promtool), and its linter
    # says nothing but that a name like task.duration_ms has its unit abbreviated (the
    # names are the ones the metrics API and the dashboard show)
    checked = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                             capture_output=True, text=True, timeout=60)
    said = (checked.stdout + checked.stderr).splitlines()
    assert checked.returncode in (0, 3) and all(
        line.endswith("metric names should not contain abbreviated units") for line in said
    ), said


async def test_agent_summary(api: httpx.AsyncClient, store: Store) -> None:
    await publish(api)
    rec = metrics.Recorder(store)
    at = time.time() - 60
    for outcome, n in (("succeeded", 8), ("failed", 2)):
        for i in range(n):
            rec.count("tasks.ended", 1, {"agent": "tuner", "outcome": outcome}, at=at)
            rec.observe("task.duration_ms", 100 + 10 * i,
                        {"agent": "tuner", "outcome": outcome}, at=at)
    await rec.flush()
    await api.post("/api/v1/llm-calls", json={"model": "m", "prompt_tokens": 10,
                                              "completion_tokens": 5, "cost": 0.25,
                                              "agent": "tuner"})
    r = await api.get("/api/v1/agents/tuner/summary", params={"window": "1h"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["tasks"] == {"succeeded": 8, "failed": 2} and s["success_rate"] == 0.8
    assert 125 < s["duration_ms"]["p50"] < 140 and 160 <= s["duration_ms"]["p95"] <= 170
    assert s["throughput_per_hour"] == 8 and s["tokens"]["total"] == 15 and s["cost"] == 0.25
    assert (await api.get("/api/v1/agents/tuner/summary",
                          params={"window": "1y"})).status_code == 400
    assert (await api.get("/api/v1/agents/tuner/summary",
                          params={"window": "365d"})).status_code == 400  # past retention
    assert (await api.get("/api/v1/agents/ghost/summary")).status_code == 404


async def test_one_wrapper_logs_measures_and_answers_each_request(
        app: FastAPI, api: httpx.AsyncClient, store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the request log is the one middleware that wraps send for the log line, the
    # metrics and the span
    assert [m.cls for m in app.user_middleware] == [RequestLog, AuditScope, BodyLimit,
                                                    InputGuard]

    @app.get("/api/v1/test-crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    app.openapi_schema = None
    monkeypatch.setitem(access.RULES, ("GET", "/api/v1/test-crash"), access.read("events"))
    for _ in range(2):
        assert (await api.get("/api/v1/test-crash")).status_code == 500
    assert (await api.get("/health")).status_code == 200
    await metrics.of(store).flush()
    counted = await query.run(store, query.Query("http.requests", agg="sum", group_by="status",
                                                 tags={"route": "/api/v1/test-crash"}),
                              query.Retention())
    # an answer the request log made itself (the last-resort 500) counts as sent
    assert {g["group"]: g["points"][0]["value"] for g in counted["groups"]} == {"500": 2}
