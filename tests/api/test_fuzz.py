"""Every operation of /openapi.json fuzzed with Schemathesis (valid and invalid
requests, seeded, bounded), as an admin, on both backends: no answer is a 5xx, every
4xx is in the error shape, and a refused request writes nothing (row counts of every
table and the audit head are the same after it)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from agentos.api.app import create_app
from agentos.config import Settings
from agentos.store import sync_url
from agentos.store.tables import metadata
from tests.conftest import ADMIN_PASSWORD, client_for, login

SEED = 20261204
EXAMPLES = 12  # requests per operation and kind: valid, invalid, valid on a seeded resource
# a refusal on these writes by design: a failed login is counted (and audited)
WRITES_WHEN_REFUSED = {("POST", "/api/v1/auth/login")}
# streams never end by themselves (they have their own tests)
NOT_FUZZED = "/api/v1/events/stream"
WAIT_S = 0.05  # the longest long poll a fuzzed request may ask for

CONFIG = SchemathesisConfig.from_dict({
    "seed": SEED, "generation": {"allow-x00": True, "database": "none",
                                 "with-security-parameters": False}})


class Footprint:
    """What a request may have written: every table's row count and the audit head,
    read in one statement on a connection of its own."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(sync_url(url), poolclass=NullPool)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        counts = ", ".join(f'(SELECT count(*) FROM "{t.name}")' for t in metadata.sorted_tables)
        self.query = text(f"SELECT {counts}, (SELECT last_hash FROM audit_head)")

    def __call__(self) -> tuple[Any, ...]:
        return tuple(self.conn.execute(self.query).one())

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


async def _seed(app: FastAPI) -> tuple[str, dict[str, dict[str, str]]]:
    """An admin API key (a fuzzed logout or user change cannot take it away), and one
    resource of each kind, so that requests naming them reach past the 404: their path
    parameters, by the path's first part."""
    async with app.router.lifespan_context(app), client_for(app) as http:
        http.headers["Authorization"] = f"Bearer {await login(http, 'admin', ADMIN_PASSWORD)}"
        key = (await http.post("/api/v1/api-keys", json={"name": "fuzz", "role": "admin"})
               ).json()
        spare = (await http.post("/api/v1/api-keys", json={"name": "spare", "role": "viewer"})
                 ).json()
        agent = {"name": "fuzz-agent", "version": "1.0.0",
                 "handler": {"type": "python", "target": "m:f"}}
        made = [await http.post("/api/v1/agents", json=agent),
                await http.post("/api/v1/agents/fuzz-agent/versions/1.0.0/publish"),
                await http.post("/api/v1/events", json={"type": "fuzz.seed"}),
                await http.post("/api/v1/tasks", json={"agent": "fuzz-agent"}),
                await http.post("/api/v1/subscriptions", json={"name": "fuzz-sub"}),
                await http.post("/api/v1/schedules", json={
                    "name": "fuzz-schedule", "interval_s": 3600, "event": {"type": "f.t"}}),
                await http.post("/api/v1/users", json={"username": "fuzz-user",
                                                       "password": "fuzz-password-1"}),
                await http.post("/api/v1/locks/device:fuzz/acquire", json={"owner": "fuzz"}),
                await http.post("/api/v1/models", json={
                    "name": "fuzz-model", "version": "1.0.0", "type": "classifier"})]
        for r in made:
            assert r.status_code < 300, r.text
        event, task = made[2].json(), made[3].json()
    known = {
        "agents": {"name": "fuzz-agent", "version": "1.0.0"},
        "events": {"event_id": event["id"]},
        "correlations": {"correlation_id": event["correlation_id"]},
        "tasks": {"task_id": task["id"]},
        "subscriptions": {"name": "fuzz-sub"},
        "schedules": {"name": "fuzz-schedule"},
        "users": {"username": "fuzz-user"},
        "api-keys": {"key_id": spare["id"]},
        "locks": {"resource": "device:fuzz"},
        "models": {"name": "fuzz-model", "version": "1.0.0"},
        "projections": {"name": "task_stats"},
    }
    return key["key"], known


@pytest.fixture
def fuzzed(database_url: str) -> Iterator[tuple[FastAPI, str, dict[str, Any], Footprint]]:
    """The app (no background loops: only requests write) on a fresh database with a
    few resources, an admin API key, what names the resources, the footprint."""
    app = create_app(Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                              login_max_delay_s=0, lock_max_wait_s=WAIT_S,
                              run_projections=False, _env_file=None))
    key, known = asyncio.run(_seed(app))
    footprint = Footprint(database_url)
    try:
        yield app, key, known, footprint
    finally:
        asgi.shutdown_lifespans()  # the app's store is closed with its lifespan
        footprint.close()


def _known(operation: Any, known: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """The seeded resource's values for the operation's path parameters, if any."""
    names = [p.name for p in operation.path_parameters]
    if not names:
        return None
    kind = operation.path.removeprefix("/api/v1/").split("/")[0]
    values = known.get(kind, {})
    if not all(n in values for n in names):
        return None
    return {n: values[n] for n in names}


def _short_waits(case: Any) -> None:
    """Long polls cut to WAIT_S, so the fuzz spends its time on requests."""
    for part in (case.query, case.body):
        if isinstance(part, dict) and isinstance(part.get("wait_s"), int | float):
            part["wait_s"] = min(part["wait_s"], WAIT_S)


def check(case: Any, key: str, footprint: Footprint, seen: Counter[str]) -> None:
    """One request: no 5xx, a 4xx in the error shape, a refusal that wrote nothing."""
    _short_waits(case)
    before = footprint()
    response = case.call(headers={"Authorization": f"Bearer {key}"})
    seen["requests"] += 1
    where = f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:300]}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if response.status_code < 400:
        seen[f"ok {case.method} {case.path}"] += 1
        return
    seen["refused"] += 1
    body = response.json()
    assert set(body) == {"error"}, (where, body)
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, (where, body)
    assert isinstance(error["code"], str) and error["code"], (where, body)
    assert isinstance(error["message"], str) and error["message"], (where, body)
    assert isinstance(error["details"], dict), (where, body)
    if (case.method, case.path) not in WRITES_WHEN_REFUSED:
        assert footprint() == before, f"{where}: {response.status_code} wrote something"


@pytest.mark.timeout(600)
def test_every_operation_fuzzed(
        fuzzed: tuple[FastAPI, str, dict[str, Any], Footprint]) -> None:
    app, key, known, footprint = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    seen: Counter[str] = Counter()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 80
    for operation in operations:
        if operation.path == NOT_FUZZED:
            continue
        seeded = _known(operation, known)
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        if seeded:  # valid requests about a resource that exists
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                    path_parameters=seeded))
        for mode, strategy in zip([*GenerationMode, GenerationMode.POSITIVE], strategies,
                                  strict=False):
            @given(case=strategy)
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
            def fuzz(case: Any) -> None:
                check(case, key, footprint, seen)

            try:
                fuzz()
            except Unsatisfiable:
                # no invalid request exists for an operation without parameters
                assert mode is GenerationMode.NEGATIVE, operation.label
        seen["operations"] += 1
    print(f"fuzzed {seen['operations']} operations: {seen['requests']} requests, "
          f"{seen['refused']} refused")
    accepted = sum(1 for o in operations if seen[f"ok {o.method.upper()} {o.path}"])
    print(f"{accepted} operations accepted some of them")
