"""The events page's live stream survives its server going away: the browser's
EventSource reconnects once the server is back and resumes after the last event it
saw (Last-Event-ID), so an event appended meanwhile shows, and none shows twice."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, expect

from agentos.store import schema
from tests.acceptance.conftest import (
    ADMIN_PASSWORD,
    AGENTOS,
    admin_token,
    environment,
    free_port,
    start,
)
from tests.browser.conftest import READY_TIMEOUT_MS, PageErrors, open_page, signed_in

RECONNECT_TIMEOUT_MS = 15_000  # Chromium retries a dropped stream after about 3 s

pytestmark = pytest.mark.slow


def serve(port: int, cwd: Path, database_url: str) -> subprocess.Popen[bytes]:
    env = environment(AGENTOS_DATABASE_URL=database_url, AGENTOS_LOG_LEVEL="warning")
    with (cwd / f"serve-{port}-{time.monotonic_ns()}.log").open("wb") as log:
        process = subprocess.Popen([*AGENTOS, "serve", "--port", str(port)], cwd=cwd, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)


def emit(url: str, token: str, marker: str) -> None:
    r = httpx.post(f"{url}/api/v1/events", headers={"Authorization": f"Bearer {token}"},
                   json={"type": "resume.check", "payload": {"marker": marker}}, timeout=10.0)
    assert r.status_code == 201, r.text


def test_the_live_stream_resumes_after_its_server_restarts(
        browser: Browser, tmp_path: Path, page_errors: PageErrors) -> None:
    database_url = f"sqlite:///{tmp_path / 'agentos.db'}"
    schema.upgrade(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(port, tmp_path, database_url)
    try:
        token = admin_token(url)
        page = signed_in(browser, url, "admin", ADMIN_PASSWORD, page_errors).new_page()
        # the page's stream drops while the server is away; the browser logs that
        page_errors.expected.append("ERR_")
        open_page(page, "/events")
        status = page.locator("#stream-status")
        expect(status).to_have_text("live", timeout=READY_TIMEOUT_MS)
        emit(url, token, "before")

        def rows(marker: str) -> Locator:
            return page.locator("tbody tr", has_text=marker)

        expect(rows("before")).to_have_count(1)

        # When the server dies, an event is appended through another server meanwhile,
        # and the first comes back on its port
        process.send_signal(signal.SIGKILL)
        process.wait()
        expect(status).to_have_text("reconnecting…", timeout=READY_TIMEOUT_MS)
        other = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
        try:
            emit(other.url, token, "while-away")
        finally:
            other.stop()
        process = serve(port, tmp_path, database_url)

        # Then the page resumes where it was: the missed event once, the first still once
        expect(status).to_have_text("live", timeout=RECONNECT_TIMEOUT_MS)
        expect(rows("while-away")).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)
        emit(url, token, "after")
        expect(rows("after")).to_have_count(1)
        expect(rows("before")).to_have_count(1)
        seqs = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.seq)")
        assert len(seqs) == len(set(seqs))
        page.context.close()
    finally:
        process.terminate()
        process.wait(10)
