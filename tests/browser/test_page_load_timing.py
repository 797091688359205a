"""Pages stay fast on a big installation: with a million events and a million tasks
(made in the test with bulk SQL, with rare values among them), every page and the
filtered views people use most wait under 300 ms for the server, as
Chromium's resource timing measures it: from request start to the first byte of the
answer, for the page itself and the API calls it makes to draw (those made at once
counted once)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser

from agentos.dashboard.pages import PAGES
from tests.acceptance.conftest import ADMIN_PASSWORD, Server, admin_token, environment, start
from tests.browser.conftest import PageErrors, open_page, signed_in

ROWS = 1_000_000  # events, and tasks
AGENTS = 20  # tasks are spread over this many agent names
SERVER_BUDGET_MS = 300.0  # server time per page
FILTERED = ["/tasks?agent=bulk-3", "/tasks?agent=rare-agent", "/tasks?status=failed",
            "/tasks?status=cancelled", "/tasks?status=running", "/tasks?status=pending",
            "/tasks?agent=bulk-3&status=failed", "/events?type=bulk.kind3", "/events?type=task.*",
            "/events?source=rare-source", "/events?correlation_id=corr-77",
            "/audit?action=tasks.retry"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

# one event in ten starts a correlation of ten; every fourth event is a task event; ten
# events come from a rare source. Tasks: one in 2,000 failed, one in 10,000 cancelled,
# one in 500 waits, the rest succeeded; ten belong to a rare agent. Rare values are what
# a filtered view must find without reading the whole table.
_EVENT_COLUMNS = """(type, source, payload, priority, correlation_id, causation_id, created_at)"""
_TASK_COLUMNS = """(id, agent, agent_version, input, priority, status, attempt, retry_base,
    max_retries, timeout_s, run_at, cancel_requested, correlation_id, output, error,
    created_at, updated_at, finished_at)"""
_SOURCE = "CASE WHEN i % 100000 = 5 THEN 'rare-source' ELSE 'bulk' END"
_STATUS = ("CASE WHEN i % 500 = 0 THEN 'pending' WHEN i % 2000 = 7 THEN 'failed' "
           "WHEN i % 10000 = 9 THEN 'cancelled' ELSE 'succeeded' END")
_ERROR = ("CASE WHEN i % 2000 = 7 THEN "
          "'{\"type\": \"RuntimeError\", \"message\": \"bulk failure\"}' END")
_FINISHED = "CASE WHEN i % 500 = 0 THEN NULL ELSE {at} END"

SQLITE = [
    f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
    INSERT INTO events (seq, id, {_EVENT_COLUMNS[1:]}
    SELECT i, printf('00000000-0000-7000-8000-%012d', i),
        CASE WHEN i % 4 = 0 THEN 'task.succeeded' ELSE printf('bulk.kind%d', i % 7) END,
        {_SOURCE}, printf('{{"n": %d}}', i), 2, printf('corr-%d', i / 10),
        CASE WHEN i % 10 = 0 THEN NULL ELSE printf('00000000-0000-7000-8000-%012d', i - 1) END,
        strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', {ROWS} - i)) FROM n""",
    f"UPDATE event_log_head SET last_seq = {ROWS} WHERE id = 1",
    f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
    INSERT INTO tasks {_TASK_COLUMNS}
    SELECT printf('00000000-0000-7000-9000-%012d', i),
        CASE WHEN i % 100000 = 3 THEN 'rare-agent' ELSE printf('bulk-%d', i % {AGENTS}) END,
        '1.0.0', '{{}}', 5, {_STATUS}, 1, 0, 0, 60.0,
        strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', {ROWS} - i)), 0,
        printf('corr-%d', i / 10), NULL, {_ERROR},
        strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', {ROWS} - i)),
        strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', {ROWS} - i)),
        CASE WHEN i % 500 = 0 THEN NULL
             ELSE strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', {ROWS} - i)) END
    FROM n""",
    "ANALYZE",
]

POSTGRES = [
    f"""INSERT INTO events (seq, id, {_EVENT_COLUMNS[1:]}
    SELECT nextval('events_seq'), format('00000000-0000-7000-8000-%s', lpad(i::text, 12, '0')),
        CASE WHEN i % 4 = 0 THEN 'task.succeeded' ELSE format('bulk.kind%s', i % 7) END,
        {_SOURCE}, jsonb_build_object('n', i), 2, format('corr-%s', i / 10),
        CASE WHEN i % 10 = 0 THEN NULL
             ELSE format('00000000-0000-7000-8000-%s', lpad((i - 1)::text, 12, '0')) END,
        now() - make_interval(secs => {ROWS} - i)
    FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO tasks {_TASK_COLUMNS}
    SELECT format('00000000-0000-7000-9000-%s', lpad(i::text, 12, '0')),
        CASE WHEN i % 100000 = 3 THEN 'rare-agent' ELSE format('bulk-%s', i % {AGENTS}) END,
        '1.0.0', '{{}}', 5, {_STATUS}, 1, 0, 0, 60.0,
        now() - make_interval(secs => {ROWS} - i), false, format('corr-%s', i / 10),
        NULL, ({_ERROR})::jsonb,
        now() - make_interval(secs => {ROWS} - i), now() - make_interval(secs => {ROWS} - i),
        CASE WHEN i % 500 = 0 THEN NULL ELSE now() - make_interval(secs => {ROWS} - i) END
    FROM generate_series(1, {ROWS}) AS i""",
    "ANALYZE",
]


def fill(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            for statement in SQLITE:
                db.execute(statement)
    else:
        with psycopg.connect(database_url, autocommit=True) as db:
            for statement in POSTGRES:
                db.execute(statement)


@pytest.fixture
def big(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A server on a million events and a million tasks; its URL."""
    made = time.monotonic()
    fill(database_url)
    print(f"\n{ROWS:,} events and {ROWS:,} tasks made in {time.monotonic() - made:.1f} s")
    server: Server = start("serve", tmp_path, environment(
        # the bulk events are not routed or folded: what is timed is the pages' reads (a
        # SQLite server folding a million events at start did not answer /health in 30 s)
        AGENTOS_DATABASE_URL=database_url, AGENTOS_RUN_ROUTER="false",
        AGENTOS_RUN_PROJECTIONS="false",
        AGENTOS_LOG_LEVEL="warning"))
    try:
        with httpx.Client(base_url=server.url, timeout=10.0, headers={
                "Authorization": f"Bearer {admin_token(server.url)}"}) as api:
            api.put("/api/v1/knowledge/runbooks/disk-full",
                    json={"content": "Rotate the logs, free the cache."}).raise_for_status()
            api.post("/api/v1/models", json={"name": "churn", "version": "1.0.0",
                                             "type": "classifier"}).raise_for_status()
            api.post("/api/v1/schedules", json={
                "name": "nightly", "cron": "0 2 * * *",
                "event": {"type": "bulk.nightly"}}).raise_for_status()
        yield server.url
    finally:
        server.stop()


def server_ms(page: Any) -> tuple[float, list[tuple[str, float]]]:
    """How long the page waited for the server: the union of its requests' spans from
    request start to the first byte of the answer (the page itself, then the API calls
    it made to draw, some of them at once), and each call's own span."""
    entries: list[dict[str, Any]] = page.evaluate("""() => [
        ...performance.getEntriesByType('navigation'),
        ...performance.getEntriesByType('resource').filter(
            e => e.initiatorType === 'fetch' || e.initiatorType === 'xmlhttprequest')]
        .map(e => ({name: e.name, start: e.requestStart, end: e.responseStart}))""")
    spans = sorted((float(e["start"]), float(e["end"])) for e in entries)
    waited, reach = 0.0, float("-inf")
    for begin, end in spans:
        if end > reach:
            waited += end - max(begin, reach)
            reach = end
    calls = [(re.sub(r"^https?://[^/]+", "", e["name"]), float(e["end"]) - float(e["start"]))
             for e in entries]
    return waited, calls


def moment(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


TRIES = 3  # loads of a page over budget before it counts as slow


def fastest_load(page: Any, path: str) -> tuple[float, list[tuple[str, float]]]:
    """The page's load, or the fastest of up to ``TRIES`` while each is over budget: the
    machine is shared (a page that reads a whole table is slow every time; one that met
    a busy moment, such as the overview's dozen calls at once on a loaded machine, is
    not)."""
    loads = []
    for _ in range(TRIES):
        open_page(page, path)
        loads.append(server_ms(page))
        if loads[-1][0] <= SERVER_BUDGET_MS:
            break
    return min(loads, key=lambda load: load[0])


def test_every_page_answers_in_under_300_ms_of_server_time(
        big: str, browser: Browser, page_errors: PageErrors) -> None:
    params = {"event_id": f"00000000-0000-7000-8000-{ROWS // 2:012d}",
              "task_id": f"00000000-0000-7000-9000-{ROWS // 2 + 20:012d}",
              "name": "bulk-3", "namespace": "runbooks", "key": "disk-full",
              "model": "churn", "projection": "task_stats", "schedule": "nightly",
              "run_id": "00000000-0000-7000-a000-000000000001"}
    context = signed_in(browser, big, "admin", ADMIN_PASSWORD, page_errors)
    page = context.new_page()
    open_page(page, "/agents")  # the server's first request pays for what it loads once
    slow: list[str] = []
    report = []
    for page_def in PAGES:
        if page_def.script in ("agent", "workflow_run", "worker"):
            continue  # the bulk tasks' agents are not in the registry; no runs, no workers
        path = re.sub(r"\{(\w+)(?::path)?\}", lambda m: params[m.group(1)], page_def.path)
        total, calls = fastest_load(page, path)
        report.append(f"{path:60} {total:7.1f} ms  " +
                      ", ".join(f"{name.split('?')[0]} {ms:.0f}" for name, ms in calls))
        if total > SERVER_BUDGET_MS:
            slow.append(report[-1])
    # and the views a person filters to most: one agent's tasks, the failed and the
    # running ones (none), one type or source or correlation of events; the tasks and
    # events of the last hour, and of an hour ten days ago (the rows are a second apart)
    now = datetime.now(UTC)
    windows = [f"since={moment(now - timedelta(hours=1))}",
               f"since={moment(now - timedelta(days=10))}"
               f"&until={moment(now - timedelta(days=10) + timedelta(hours=1))}"]
    for path in FILTERED + [f"/{listed}?{window}" for listed in ("tasks", "events")
                            for window in windows]:
        total, calls = fastest_load(page, path)
        report.append(f"{path:60} {total:7.1f} ms")
        if total > SERVER_BUDGET_MS:
            slow.append(report[-1])
    context.close()
    print("\n" + "\n".join(report))
    assert slow == [], "\n".join(slow)
