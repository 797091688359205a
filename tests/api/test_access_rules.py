"""The route table: every route of the app has a rule, and each rule holds when called.

The walk builds a URL for every route, calls it with no credential, then as a
viewer, an operator and an admin: below the rule's role it must be 401/403
(with an audit row for the refusal), at or above it must get past the guard.
A route added without a rule fails the first test.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from agentos.api import access, hot_routes
from agentos.dashboard.pages import BY_PATH
from agentos.roles import Role
from agentos.store import Store
from agentos.store.tables import audit_log

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the guard is the same on both
# checked for refusals only: an allowed call would not end, or would end the session
NOT_CALLED_WHEN_ALLOWED = {"/api/v1/events/stream", "/api/v1/auth/logout"}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or []):
            if method != "HEAD" and path is not None:
                found.append((method, path))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def denied_rows(store: Store) -> int:
    async with store.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(audit_log)
                                       .where(audit_log.c.outcome == "denied"))).scalar_one())


def test_every_route_has_a_rule_and_every_rule_a_route(app: FastAPI) -> None:
    present = routes(app)
    assert [r for r in present if access.rule_for(*r) is None] == []
    assert sorted(set(access.RULES) - set(present)) == []
    # the API routes are all FastAPI routes, so the guard runs for each of them, or the
    # hot routes served ahead of some of them, whose endpoints run the guard first
    api_routes = [c.original_route for c in iter_route_contexts(app.router.routes)
                  if getattr(c.original_route, "path", "").startswith("/api/")]
    assert api_routes and all(isinstance(r, APIRoute | hot_routes.HotRoute)
                              for r in api_routes)
    assert {(m, r.path) for r in api_routes if isinstance(r, hot_routes.HotRoute)
            for m in r.methods or ()} == set(hot_routes.HOT)


async def test_no_credential_is_401_on_every_guarded_route(app: FastAPI,
                                                           anon: httpx.AsyncClient) -> None:
    for method, path in routes(app):
        rule = access.rule_for(method, path)
        assert rule is not None
        if rule.role is None or path in BY_PATH:  # a page answers with the sign-in form
            continue
        r = await anon.request(method, concrete(path), json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "credential_required"
        assert r.headers["www-authenticate"] == "Bearer"


async def test_each_role_gets_exactly_what_its_rule_allows(
        app: FastAPI, store: Store, api: httpx.AsyncClient,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    clients = {Role.VIEWER: await as_role("viewer"), Role.OPERATOR: await as_role("operator"),
               Role.ADMIN: api}
    checked = 0
    for method, path in routes(app):
        rule = access.rule_for(method, path)
        assert rule is not None
        if rule.role is None:
            continue
        for role, client in clients.items():
            allowed = role.allows(rule.role)
            if allowed and path in NOT_CALLED_WHEN_ALLOWED:
                continue
            before = await denied_rows(store)
            r = await client.request(method, concrete(path),
                                     json={} if method in ("POST", "PUT", "PATCH") else None)
            if allowed:
                assert r.status_code not in (401, 403), (role, method, path, r.text)
            else:
                assert r.status_code == 403, (role, method, path, r.text)
                if path in BY_PATH:  # a person is told in a page
                    assert "Not for your role" in r.text and str(rule.role) in r.text
                else:
                    assert r.json()["error"]["details"] == {"needs": str(rule.role),
                                                            "role": str(role)}
                # the refusal is in the audit log
                assert await denied_rows(store) == before + 1, (role, method, path)
            checked += 1
    assert checked > 100


async def test_the_dashboard_page_asks_a_person_to_sign_in(anon: httpx.AsyncClient,
                                                           api: httpx.AsyncClient) -> None:
    page = await anon.get("/")
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="login"' in page.text and "/static/app/login.js" in page.text
    assert (await anon.get("/static/app/login.js")).status_code == 200
    assert 'data-page="overview"' in (await api.get("/")).text


async def test_the_dashboard_cookie_serves_reads_and_never_writes(
        anon: httpx.AsyncClient) -> None:
    from tests.conftest import ADMIN_PASSWORD

    r = await anon.post("/api/v1/auth/login", json={"username": "admin",
                                                    "password": ADMIN_PASSWORD,
                                                    "cookie": True})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    # the client keeps the cookie: reads work, the page loads, a write is refused
    assert (await anon.get("/api/v1/agents")).status_code == 200
    assert (await anon.get("/")).status_code == 200
    refused = await anon.post("/api/v1/events", json={"type": "x.y"})
    assert refused.status_code == 401
    # and logging out with it clears it
    assert (await anon.post("/api/v1/auth/logout")).status_code == 204
    assert (await anon.get("/api/v1/agents")).status_code == 401


async def test_the_openapi_schema_says_what_each_operation_needs(
        anon: httpx.AsyncClient) -> None:
    schema = (await anon.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    publish = schema["paths"]["/api/v1/agents/{name}/versions/{version}/publish"]["post"]
    assert publish["security"] == [{"bearer": []}]
    assert publish["description"].startswith("Needs the **admin** role.")
