"""The dashboard's server side: each page is a shell naming its script, the caller
and what their role may call; sign-in and role pages for people; static files."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from agentos.api import access
from agentos.dashboard import routes as dashboard
from agentos.dashboard.pages import PAGES
from agentos.roles import Role

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # no storage of its own


def session_of(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="session">(.*?)</script>', page)
    assert found, page
    return dict(json.loads(found.group(1)))


async def test_every_page_is_a_shell_naming_its_script(api: httpx.AsyncClient) -> None:
    for page in PAGES:
        path = re.sub(r"\{\w+(:path)?\}", "some-id", page.path)
        r = await api.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert f'data-page="{page.script}"' in r.text and f"<title>{page.title} · AgentOS" in r.text
        assert (await api.get(f"/static/app/pages/{page.script}.js")).status_code == 200
    r = await api.get("/tasks/abc-123")
    assert """data-params='{"task_id": "abc-123"}'""" in r.text


async def test_the_shell_says_what_the_role_may_call(
        api: httpx.AsyncClient, as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    admin = session_of((await api.get("/")).text)
    assert admin["actor"] == "user:admin" and admin["role"] == "admin"
    viewer_client = await as_role("viewer")
    viewer = session_of((await viewer_client.get("/")).text)
    force = "POST /api/v1/locks/{resource:path}/force-release"
    assert force in admin["allowed"] and force not in viewer["allowed"]  # type: ignore[operator]
    assert "GET /api/v1/tasks" in viewer["allowed"]  # type: ignore[operator]
    # exactly the rules: what a role is offered is what the server lets it do
    for role in Role:
        for entry in dashboard.allowed(role):
            method, path = entry.split(" ", 1)
            rule = access.rule_for(method, path)
            assert rule is not None and (rule.role is None or role.allows(rule.role))
    # the navigation lists the admin pages for admins only
    assert 'href="/audit"' in (await api.get("/")).text
    assert 'href="/audit"' not in (await viewer_client.get("/")).text


async def test_people_get_pages_not_json(anon: httpx.AsyncClient,
                                         as_role: Callable[[str], Awaitable[httpx.AsyncClient]]
                                         ) -> None:
    for path in ("/", "/tasks", "/events/x", "/audit"):
        r = await anon.get(path)
        assert r.status_code == 401 and 'form id="login"' in r.text, path
    viewer = await as_role("viewer")
    r = await viewer.get("/users")
    assert r.status_code == 403 and "Not for your role" in r.text
    assert "admin" in r.text
    # an API route keeps answering JSON
    r = await viewer.get("/api/v1/users")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_static_files_are_served_revalidated_and_confined(api: httpx.AsyncClient) -> None:
    r = await api.get("/static/dashboard.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.headers["cache-control"] == "no-cache"
    again = await api.get("/static/dashboard.css", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    r = await api.get("/static/app/main.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    for bad in ("/static/../routes.py", "/static/app/../../routes.py", "/static/%2e%2e/pages.py",
                "/static/vendor/.installed", "/static/nothing.js", "/static/app",
                "/static/../templates/page.html"):
        assert (await api.get(bad)).status_code == 404, bad


async def test_the_page_says_when_the_front_end_libraries_are_missing(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    monkeypatch.setattr(dashboard, "VENDOR_STAMP", Path(str(tmp_path)) / "absent")
    r = await api.get("/")
    assert "front-end libraries are not installed" in r.text and "make run" in r.text
