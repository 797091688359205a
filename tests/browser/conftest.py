"""The dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright for Python (pointed at /usr/bin/chromium; it never downloads a browser),
against a real ``agentos serve`` and ``agentos worker`` on 127.0.0.1.

Nothing is skipped: without Chromium or the front-end libraries every test here
fails and says how to install them (CI installs both). Each page a test opens is
checked for script errors; screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from agentos.dashboard import routes as dashboard
from agentos.store import schema
from tests.acceptance.conftest import ADMIN_PASSWORD, Server, admin_token, environment, start

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("AGENTOS_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
USER_PASSWORD = "browser-user-password"
# what the probe of this machine found Chromium needs as root in a closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
READY_TIMEOUT_MS = 10_000  # a page has drawn itself (main[data-ready])
ACTION_TIMEOUT_MS = 10_000  # Playwright's wait for an element to act on


def _require_tools() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run 'bash "
                    "scripts/ensure-chromium.sh' (apt-get install chromium chromium-driver);"
                    " CI installs it", pytrace=False)
    if not dashboard.VENDOR_STAMP.exists() or not AXE.exists():
        pytest.fail("the dashboard's front-end libraries are not installed: run "
                    "'bash scripts/dashboard-assets.sh' (make test does)", pytrace=False)


# per module, not per session: sync Playwright marks an event loop as running in this
# thread while it is started, which the asyncio tests after these could not run beside
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_tools()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class System:
    """A server and a worker on one SQLite database, and who can sign in to it."""

    server: Server
    worker: subprocess.Popen[bytes]
    database_url: str
    passwords: dict[str, str] = field(default_factory=dict)  # username -> password
    tokens: dict[str, str] = field(default_factory=dict)  # role -> a token of that role

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})


def start_worker(database_url: str, cwd: Path, name: str) -> subprocess.Popen[bytes]:
    env = environment(AGENTOS_DATABASE_URL=database_url, PYTHONPATH=str(ROOT),
                      AGENTOS_LOG_LEVEL="warning")
    with (cwd / f"{name}.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "worker", "--id", name,
                                 "--poll", "0.2"], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def login(url: str, username: str, password: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"username": username, "password": password},
                   timeout=10.0)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One server and one worker for a module's tests (each test makes its own data)."""
    _require_tools()
    cwd = tmp_path_factory.mktemp("dashboard")
    database_url = f"sqlite:///{cwd / 'agentos.db'}"
    schema.upgrade(database_url)
    server = start("serve", cwd, environment(AGENTOS_DATABASE_URL=database_url))
    worker = start_worker(database_url, cwd, "browser-worker")
    running = System(server, worker, database_url)
    try:
        running.tokens["admin"] = admin_token(server.url)
        running.passwords["admin"] = ADMIN_PASSWORD
        with running.api() as api:
            for role in ("operator", "viewer"):
                r = api.post("/api/v1/users", json={"username": role, "role": role,
                                                    "password": USER_PASSWORD})
                assert r.status_code == 201, r.text
                running.passwords[role] = USER_PASSWORD
                running.tokens[role] = login(server.url, role, USER_PASSWORD)
        yield running
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        server.stop()


class PageErrors:
    """Script errors and failed requests of the pages a test opened: none allowed."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        # the sign-in form is a 401 page, which the browser logs as a failed load
        self.expected = ["status of 401"]

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("console", lambda m: self.errors.append(f"{page.url}: console {m.text}")
                if m.type == "error" and not any(e in m.text for e in self.expected) else None)


@pytest.fixture
def page_errors() -> Iterator[PageErrors]:
    errors = PageErrors()
    yield errors
    assert errors.errors == []


def signed_in(browser: Browser, url: str, username: str, password: str,
              errors: PageErrors) -> BrowserContext:
    """A browser context signed in the way the sign-in form leaves it: the token in
    localStorage and the server's HttpOnly cookie."""
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    r = httpx.post(f"{url}/api/v1/auth/login", timeout=10.0,
                   json={"username": username, "password": password, "cookie": True})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    context.add_cookies([{"name": "agentos_token", "value": token, "url": url,
                          "httpOnly": True, "sameSite": "Strict"}])
    context.add_init_script(f"if (location.origin === {url!r}) "
                            f"localStorage.setItem('agentos_token', {token!r});")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.on("page", errors.watch)
    return context


@pytest.fixture
def as_role(browser: Browser, system: System, page_errors: PageErrors
            ) -> Iterator[Callable[[str], Page]]:
    """``as_role("viewer")``: a new page signed in as that role."""
    contexts: list[BrowserContext] = []

    def make(role: str) -> Page:
        context = signed_in(browser, system.url, role, system.passwords[role], page_errors)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def open_page(page: Page, path: str) -> Page:
    """Go to ``path`` and wait until its script has drawn it."""
    page.goto(path)
    page.wait_for_selector("main[data-ready]", timeout=READY_TIMEOUT_MS)
    failed = page.locator("main[data-failed] .error")
    assert failed.count() == 0, f"{path}: {failed.inner_text()}"
    return page


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2 A/AA)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol: the page's Content-Security-Policy,
        # which refuses inline scripts, still holds for everything the page runs itself
        page.evaluate(AXE.read_text("utf-8") + "\n;0")
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.html)}))")
    return [v for v in found if v["impact"] in ("serious", "critical")]
