"""Odd values are refused with a 422 naming the field, not taken or silently changed:
a boolean written as a string, a key that expires before it is made, a one-shot
schedule in the past, moments in year 9999 or that do not exist in UTC, versions
with numbers past 64 bits. Nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.api.test_tasks_api import publish
from tests.snapshot import snapshot

HANDLER = {"type": "python", "target": "m:f"}
YEAR_1 = "0001-01-01T00:00:00+01:00"  # before the first moment UTC has


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    # "yes" was taken as true
    ("POST", "/api/v1/users", {"username": "bob", "password": "p" * 12, "active": "yes"},
     "active"),
    ("PATCH", "/api/v1/users/admin", {"active": "no"}, "active"),
    ("POST", "/api/v1/subscriptions", {"name": "s", "from_start": 1}, "from_start"),
    ("POST", "/api/v1/events/prune", {"older_than": "1d", "dry_run": "false"}, "dry_run"),
    ("POST", "/api/v1/schedules", {"name": "s", "interval_s": 60, "paused": "true",
                                   "event": {"type": "a.b"}}, "paused"),
    # a key made already expired, or for a moment that does not exist
    ("POST", "/api/v1/api-keys", {"name": "k", "role": "viewer",
                                  "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ("POST", "/api/v1/api-keys", {"name": "k", "role": "viewer", "expires_at": YEAR_1},
     "expires_at"),
    ("POST", "/api/v1/api-keys", {"name": "k", "role": "viewer",
                                  "expires_at": "9999-12-31T00:00:00Z"}, "expires_at"),
    # a one-shot schedule in the past, or far beyond any use
    ("POST", "/api/v1/schedules", {"name": "s", "at": "2020-01-01T00:00:00Z",
                                   "event": {"type": "a.b"}}, "at"),
    ("POST", "/api/v1/schedules", {"name": "s", "at": "9999-01-01T00:00:00Z",
                                   "event": {"type": "a.b"}}, "at"),
    # a task to run in year 9999, or at a moment UTC does not have
    ("POST", "/api/v1/tasks", {"agent": "a", "run_at": "9999-01-01T00:00:00Z"}, "run_at"),
    ("POST", "/api/v1/tasks", {"agent": "a", "run_at": YEAR_1}, "run_at"),
    ("POST", "/api/v1/tasks/batch", {"tasks": [{"agent": "a"}, {
        "agent": "a", "run_at": "9999-01-01T00:00:00Z"}]}, "tasks[1].run_at"),
    # version numbers past 64 bits, versions past the column
    ("POST", "/api/v1/agents", {"name": "v", "version": "99999999999999999999.0.0",
                                "handler": HANDLER}, "version"),
    ("POST", "/api/v1/agents", {"name": "v", "version": "1.0.0-" + "9" * 25,
                                "handler": HANDLER}, "version"),
    ("POST", "/api/v1/agents", {"name": "v", "version": "1.0.0-" + "a" * 200,
                                "handler": HANDLER}, "version"),
    ("POST", "/api/v1/agents", {"name": "v", "version": "1.0.0", "handler": HANDLER,
                                "sub_agents": [{"name": "w",
                                                "version": ">=1.0.99999999999999999999"}]},
     "sub_agents[0].version"),
])
async def test_odd_values_are_refused_naming_the_field(
        api: httpx.AsyncClient, store: Store, method: str, path: str, body: dict[str, Any],
        field: str) -> None:
    await publish(api)
    before = await snapshot(store)
    error = assert_error(await api.request(method, path, json=body), 422)
    assert field in [e["path"] for e in error["details"]["errors"]], error
    assert await snapshot(store) == before


@pytest.mark.parametrize(("path", "param"), [
    ("/api/v1/events", "since"), ("/api/v1/events", "until"), ("/api/v1/audit", "since"),
    ("/api/v1/tasks", "since"), ("/api/v1/tasks", "until")])
async def test_moments_that_do_not_exist_in_utc_are_refused(
        api: httpx.AsyncClient, path: str, param: str) -> None:
    for moment in (YEAR_1, "9999-12-31T23:59:59-23:00"):
        error = assert_error(await api.get(path, params={param: moment}), 422)
        assert error["details"]["errors"][0]["path"] == f"query.{param}"
