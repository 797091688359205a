"""Traces: with AGENTOS_OTLP_ENDPOINT set, spans for HTTP requests, task attempts and LLM
calls reach an OTLP/HTTP collector with the correlation id as an attribute, the LLM
call inside its attempt; the variable alone turns them on in the server and in a worker
process; unset, neither the SDK nor an exporter is even imported (the
API is: FastAPI imports it)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from agentos import server, traces
from agentos.config import Settings
from agentos.store import Store
from agentos.tasks import Status
from tests.conftest import ADMIN_PASSWORD, client_for
from tests.contract.test_handler_kinds import agent, run, submit
from tests.crash.test_workers import start_worker
from tests.fake_llm import FakeLlm
from tests.otlp_collector import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector().start()
    traces.setup(found.endpoint, "agentos-test")
    yield found
    traces.shutdown()
    found.stop()


async def test_spans_for_requests_attempts_and_llm_calls(
        store: Store, app: FastAPI, collector: Collector,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlm().start()
    monkeypatch.setenv("AGENTOS_LLM_BASE_URL", fake.base_url)
    try:
        await agent(store, "asker", {"type": "python", "target": "tests.handlers:llm_user"},
                    model={"provider": "openai", "name": "gpt-4o-mini"})
        [task] = await run(store, await submit(store, "asker", calls=1))
        assert task.status is Status.SUCCEEDED
    finally:
        fake.stop()
    async with client_for(app) as http:
        r = await http.get("/health", headers={"x-correlation-id": "corr-42"})
        assert r.status_code == 200
    traces.flush()
    [attempt] = collector.named("task.attempt")
    correlation = task.to_dict()["correlation_id"]
    assert attempt["attributes"]["agentos.correlation_id"] == correlation
    assert attempt["attributes"]["agentos.task_id"] == task.id
    assert attempt["attributes"]["agentos.agent"] == "asker"
    [call] = collector.named("llm.chat")
    assert call["parent"] == attempt["span_id"] and call["trace_id"] == attempt["trace_id"]
    assert call["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert call["attributes"]["gen_ai.usage.input_tokens"] == 12
    assert call["attributes"]["agentos.correlation_id"] == correlation
    [request] = collector.named("HTTP GET")
    assert request["attributes"]["http.route"] == "/health"
    assert request["attributes"]["http.response.status_code"] == 200
    assert request["attributes"]["agentos.correlation_id"] == "corr-42"
    # the id the request log gives it (one wrapper for the log, the metrics and the span)
    assert request["attributes"]["agentos.request_id"] == r.headers["x-request-id"]
    assert collector.services == {"agentos-test"}


async def test_the_environment_variable_turns_spans_on_in_server_and_worker(
        database_url: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    collector = Collector().start()  # tracing not set up in this process
    monkeypatch.setenv("AGENTOS_OTLP_ENDPOINT", collector.endpoint)
    try:
        # the server made from the environment's settings exports its request spans
        settings = Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                            _env_file=None)
        assert settings.otlp_endpoint == collector.endpoint
        app = server.create(settings, store)
        async with app.router.lifespan_context(app), client_for(app) as http:
            assert traces.enabled()
            r = await http.get("/health", headers={"x-correlation-id": "corr-env"})
            assert r.status_code == 200
        traces.shutdown()
        # a worker process started with the variable exports its attempts' spans
        await agent(store, "echoer", {"type": "python", "target": "tests.handlers:echo"})
        task_id = await submit(store, "echoer")
        worker = start_worker(database_url, "--burst", "--poll", "0.05")  # inherits the env
        assert worker.wait(timeout=60) == 0
        [request] = collector.named("HTTP GET")
        assert request["attributes"]["agentos.correlation_id"] == "corr-env"
        [attempt] = collector.named("task.attempt")
        assert attempt["attributes"]["agentos.task_id"] == task_id
        assert collector.services == {"agentos-server", "agentos-worker"}
    finally:
        traces.shutdown()
        collector.stop()


def test_unset_costs_nothing() -> None:
    code = ("import sys, agentos.server, agentos.worker.loop\n"
            "from agentos import traces\n"
            "assert traces.span('a') is traces.span('b') and not traces.enabled()\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert json.loads(out.replace("'", '"')) == []
