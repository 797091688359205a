"""Every page of the dashboard, opened in Chromium with data to show: it draws
without a script error, axe-core finds no serious or critical accessibility
violation, and a screenshot of it is kept (test-artifacts/dashboard/). A viewer's
navigation lacks the admin pages, which answer why instead of drawing."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from agentos.dashboard.pages import PAGES
from agentos.roles import Role
from tests.browser.conftest import PageErrors, System, axe_violations, open_page, screenshot

DATA_TIMEOUT_S = 15.0  # the worker has run the seeded tasks


@pytest.fixture(scope="module")
def seeded(system: System) -> Iterator[dict[str, Any]]:
    """Something on every page: agents, a routed event and its tasks, a held lock with
    a waiter, a schedule, an API key. The path parameters of the detail pages."""
    with system.api() as api:
        api.post("/api/v1/agents/import?publish=true", content=TEMPLATE_AGENT,
                 headers={"Content-Type": "application/yaml"}).raise_for_status()
        event = api.post("/api/v1/events", json={"type": "page.seed", "source": "test",
                                                 "payload": {"n": 1}}).json()
        task = api.post("/api/v1/tasks", json={"agent": "page-echo", "input": {"x": 1},
                                               "causation_id": event["id"],
                                               "correlation_id": event["correlation_id"]}).json()
        api.post("/api/v1/locks/device:page-1/acquire",
                 json={"owner": "alice", "ttl_s": 600}).raise_for_status()
        api.post("/api/v1/locks/device:page-1/acquire",
                 json={"owner": "bob", "ttl_s": 600, "wait_s": 0.1}).raise_for_status()
        api.post("/api/v1/schedules", json={"name": "page-nightly", "cron": "0 2 * * *",
                                            "timezone": "Europe/Paris",
                                            "event": {"type": "qa.nightly"}}).raise_for_status()
        api.post("/api/v1/api-keys", json={"name": "page-ci", "role": "operator"}
                 ).raise_for_status()
        api.post("/api/v1/llm-calls", json={"calls": [
            {"provider": "openai", "model": "gpt-4o-mini", "prompt_tokens": 120,
             "completion_tokens": 30, "latency_ms": 420, "agent": "page-echo"},
            {"provider": "openai", "model": "gpt-4o-mini", "prompt_tokens": 80,
             "completion_tokens": 0, "latency_ms": 90, "outcome": "error",
             "error": "rate limited", "agent": "page-echo"}]}).raise_for_status()
        api.post("/api/v1/budgets", json={"scope": "agent", "target": "page-echo",
                                          "metric": "tokens", "period": "day",
                                          "limit": 1000.0}).raise_for_status()
        api.post("/api/v1/workflows/import?publish=true", headers={
            "Content-Type": "application/yaml"}, content=(
            "name: page-flow\nversion: 1.0.0\ndescription: echo, then an admin's yes\n"
            "steps:\n  - id: plan\n    agent: page-echo\n    input: {n: 2}\n"
            "  - id: approve\n    type: approval\n    role: admin\n    depends_on: [plan]\n"
            )).raise_for_status()
        run = api.post("/api/v1/workflow-runs", json={"workflow": "page-flow"}).json()
        api.post("/api/v1/subscriptions", json={"name": "page-consumer", "type": "page.*",
                                                "from_start": True}).raise_for_status()
        for version in ("1.0.0", "1.1.0"):
            api.post("/api/v1/models", json={
                "name": "churn", "version": version, "type": "classifier",
                "framework": "sklearn", "metrics": {"auc": 0.91, "f1": 0.8},
                "artifact_uri": f"s3://models/churn/{version}.pkl"}).raise_for_status()
        api.post("/api/v1/models/churn/versions/1.0.0/deploy").raise_for_status()
        api.put("/api/v1/knowledge/runbooks/disk-full", json={
            "title": "Disk full", "tags": ["ops"], "metadata": {"team": "qa"},
            "content": "When a device's disk is full, rotate the logs and free the cache."}
        ).raise_for_status()
        deadline = time.monotonic() + DATA_TIMEOUT_S
        while api.get(f"/api/v1/tasks/{task['id']}").json()["status"] != "succeeded" or \
                not api.get("/api/v1/approvals", params={"run_id": run["id"]}).json()["approvals"]:
            assert time.monotonic() < deadline, "the worker did not run the seeded tasks"
            time.sleep(0.1)
    yield {"event_id": event["id"], "task_id": task["id"], "name": "page-echo",
           "namespace": "runbooks", "key": "disk-full", "model": "churn",
           "projection": "agent_activity", "run_id": run["id"],
           "worker_id": "browser-worker", "schedule": "page-nightly"}


TEMPLATE_AGENT = """
name: page-echo
version: 1.0.0
display_name: Page echo
description: Echoes its input, for the dashboard's page tests
tags: [test]
handler: {type: python, target: "tests.handlers:echo"}
capabilities:
  - {name: echoing, version: "1", description: says back what it gets}
config:
  greeting: {type: string, value: hello, description: what it says first}
  repeat: {type: integer, value: 1}
triggers:
  - event: page.*
    filter: {n: 1}
"""


def concrete(path: str, params: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: str(params[m.group(1)]), path)


@pytest.mark.parametrize("page_def", PAGES, ids=[p.script for p in PAGES])
def test_every_page_draws_is_accessible_and_is_kept_as_a_screenshot(
        page_def: Any, seeded: dict[str, Any], as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("admin"), concrete(page_def.path, seeded))
    expect(page.locator("main[data-failed]")).to_have_count(0)
    expect(page.locator("main h1").first).not_to_be_empty()
    screenshot(page, page_def.script)
    assert axe_violations(page) == []


def test_the_overview_charts_what_the_read_models_counted(seeded: dict[str, Any],
                                                         as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), "/?window=6")
    expect(page.locator("figure.chart-figure canvas").first).to_be_visible()
    throughput = page.locator("section", has_text="Throughput and failures")
    expect(throughput.locator("figcaption")).to_have_text(
        "Task outcomes per hour, the last 6 hours")
    numbers = throughput.locator("figure.chart-figure table.numbers")
    expect(numbers.locator("tbody tr")).to_have_count(6)
    # the seeded task's hour counts it (the table: time, submitted, failed, succeeded);
    # which row is its hour depends on whether an hour began since it was seeded
    succeeded = numbers.locator("tbody tr td:nth-child(4)")
    expect(succeeded).to_have_count(6)
    expect(succeeded.filter(has_not_text=re.compile(r"^0$"))).not_to_have_count(0,
                                                                              timeout=10_000)
    expect(page.locator("section", has_text="Queue by agent")).to_contain_text("page-echo")


def test_the_overview_charts_an_absolute_window_kept_in_the_url(
        seeded: dict[str, Any], as_role: Callable[[str], Page]) -> None:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(minute=30, second=0,
                                                            microsecond=0)
    end = start + timedelta(hours=5)  # hh:30 to hh+5:30: six hours, the first and last cut
    shared = f"/?from={start.isoformat().replace('+00:00', 'Z')}&to=" \
             f"{end.isoformat().replace('+00:00', 'Z')}"
    span = f"from {start:%Y-%m-%d %H:%M} UTC to {end:%Y-%m-%d %H:%M} UTC"
    page = open_page(as_role("viewer"), shared)
    throughput = page.locator("section", has_text="Throughput and failures")
    expect(throughput.locator("figcaption")).to_have_text(f"Task outcomes per hour, {span}")
    expect(throughput.locator("table.numbers tbody tr")).to_have_count(6)
    expect(page.locator("[data-chart=llm-cost] figcaption")).to_have_text(
        f"LLM cost per hour, {span}")
    # nothing was recorded two days ago: the plot is drawn, axes and all, saying so
    cost = page.locator("[data-chart=llm-cost]")
    expect(cost.locator("canvas").first).to_be_visible()
    expect(cost.locator(".u-axis")).to_have_count(2)
    expect(cost.locator(".chart-empty")).to_be_visible()
    expect(cost.locator(".chart-empty")).to_have_text("no data in this window")
    expect(cost).not_to_contain_text("nothing recorded")  # said once, by the chart
    expect(cost.locator(".chart")).to_have_attribute(
        "aria-label", f"LLM cost per hour, {span}: no data in this window")
    screenshot(page, "overview-empty-window")
    expect(page.get_by_label("From (or a window above)")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_be_visible()
    expect(page.locator("[data-window=error]")).to_have_count(0)
    assert axe_violations(page) == []
    # a bad window is said, and the last hours are shown instead
    for query, message in [
        ("from=2026-01-10T13:00:00Z&to=2026-01-10T08:00:00Z", "From must be before To."),
        ("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "at most 31 days"),
        ("from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", "within the last 90 days"),
        ("from=2026-01-01T00:00:00Z", "Give both From and To"),
        ("from=yesterday&to=today", "From and To must be times"),
    ]:
        page = open_page(as_role("viewer"), f"/?window=6&{query}")
        expect(page.get_by_role("alert").filter(has_text=message)).to_be_visible()
        expect(page.locator("section", has_text="Throughput and failures").locator(
            "figcaption")).to_have_text("Task outcomes per hour, the last 6 hours")


def test_the_overview_charts_lock_waits_and_llm_cost_and_draws_a_new_wait_live(
        seeded: dict[str, Any], system: System, as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), "/?window=6")
    # the seeded LLM calls' cost, per hour, from the llm.cost_usd metric
    cost = page.locator("[data-chart=llm-cost]")
    expect(cost.locator("figcaption")).to_have_text("LLM cost per hour, the last 6 hours")
    expect(cost.locator("canvas").first).to_be_visible(timeout=15_000)
    expect(cost.locator(".chart-empty")).to_be_hidden()
    expect(page.locator("[data-chart=queue-depth] figcaption")).to_contain_text(
        "Tasks waiting per agent")
    # When someone waits for a lock while the page is open (bob queues; alice lets go)
    resource = f"device:chart-{uuid.uuid4().hex[:6]}"
    with system.api("operator") as api, ThreadPoolExecutor(1) as pool:
        held = api.post(f"/api/v1/locks/{resource}/acquire",
                        json={"owner": "alice", "ttl_s": 60}).json()
        assert held["granted"] is True
        bob = pool.submit(lambda: httpx.post(
            f"{system.url}/api/v1/locks/{resource}/acquire", timeout=30.0,
            headers={"Authorization": f"Bearer {system.tokens['operator']}"},
            json={"owner": "bob", "ttl_s": 60, "wait_s": 20}).json())
        deadline = time.monotonic() + 10
        while not api.get(f"/api/v1/locks/{resource}").json()["queue"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        api.post(f"/api/v1/locks/{resource}/release",
                 json={"owner": "alice", "token": held["token"]}).raise_for_status()
        assert bob.result(timeout=10)["granted"] is True
    # Then the lock-waits chart draws it, without a reload (a line per lock type)
    waits = page.locator("[data-chart=lock-waits]")
    expect(waits.locator("canvas").first).to_be_visible(timeout=20_000)
    expect(waits.locator("table.numbers thead th")).to_have_count(2)
    expect(waits.locator(".chart-empty")).to_be_hidden()
    screenshot(page, "overview-charts")
    assert axe_violations(page) == []


def test_an_agents_page_summarises_its_last_day(seeded: dict[str, Any],
                                                as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), f"/agents/{seeded['name']}")
    summary = page.locator("section#summary")
    expect(summary.locator("h2")).to_have_text("The last 24 hours")
    # the seeded tasks, once the metrics consumer has folded their events (live, 10 s)
    expect(summary).to_contain_text("succeeded", timeout=25_000)
    expect(summary).to_contain_text("100.0 %")
    expect(summary).to_contain_text("p95")
    # and the two seeded LLM calls of the agent
    expect(summary.locator("dd").nth(4)).to_have_text("2 (1 unpriced)")


def test_the_llm_page_sums_and_lists_the_calls_of_a_window(seeded: dict[str, Any],
                                                           system: System,
                                                           as_role: Callable[[str], Page]
                                                           ) -> None:
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # the seeded calls (made minutes ago) are in a window from an hour ago ...
    page = open_page(as_role("viewer"), f"/llm?since={hour_ago}")
    summary = page.locator("section", has_text="Summary by model")
    expect(summary.locator("tbody tr")).to_contain_text(["gpt-4o-mini"])
    expect(page.locator("section", has_text="Calls, newest first").locator("tbody tr")
           ).to_have_count(2)
    expect(page.get_by_label("From")).not_to_have_value("")
    # ... and none in the window before it, whose summary and list are empty
    page = open_page(page, f"/llm?until={hour_ago}")
    expect(page.locator("section", has_text="Summary by model")).to_contain_text(
        "no LLM calls recorded")
    expect(page.locator("section", has_text="Calls, newest first")).to_contain_text(
        "no calls match")
    # the tiles stay today's (UTC: the seeded calls, unless the day turned since)
    midnight = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    with system.api("viewer") as api:
        days = api.get("/api/v1/llm-calls/summary", params={"by": "day", "since": midnight}
                       ).json()["rows"]
    expect(page.locator(".tile", has_text="Calls today")).to_contain_text(
        str(days[0]["calls"] if days else 0))


def test_a_correlation_chain_is_drawn_as_a_graph_of_causes(seeded: dict[str, Any],
                                                           as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), f"/events/{seeded['event_id']}")
    # the seeded event, the task it caused (and was routed to) and their lifecycle events
    expect(page.locator(".graph canvas").first).to_be_visible()
    nodes = page.evaluate("""() => document.querySelectorAll('.tree li').length""")
    assert nodes >= 4
    drawn = page.locator(".graph").evaluate("el => el._cyreg.cy.nodes().length")
    assert drawn == nodes


def test_knowledge_search_marks_the_matches(seeded: dict[str, Any],
                                            as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), "/knowledge?q=rotated")
    result = page.locator("ol.results li", has_text="Disk full")
    expect(result.locator("mark")).to_have_text(["rotate"])  # stemmed: rotated finds rotate
    result.locator("a").first.click()
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("pre.content")).to_contain_text("free the cache")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)  # a viewer's page


def test_an_admin_deploys_a_model_version(seeded: dict[str, Any], system: System,
                                          as_role: Callable[[str], Page]) -> None:
    operator = open_page(as_role("operator"), "/models/churn")
    expect(operator.get_by_role("button", name="Deploy")).to_have_count(0)  # admins deploy
    page = open_page(as_role("admin"), "/models/churn")
    expect(page.locator(".title-row").first).to_contain_text("1.0.0")
    page.locator("tbody tr", has_text="1.1.0").get_by_role("button", name="Deploy").click()
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("tbody tr", has_text="1.1.0")).to_contain_text("deployed")
    expect(page.locator("tbody tr", has_text="1.0.0")).to_contain_text("archived")
    with system.api() as api:
        assert api.get("/api/v1/models/churn").json()["deployed"] == ["1.1.0"]


def test_the_pages_refuse_scripts_and_styles_they_do_not_serve(
        seeded: dict[str, Any], as_role: Callable[[str], Page], page_errors: PageErrors) -> None:
    """Content-Security-Policy: markup that slipped into a page could not run."""
    # the refusals, on purpose, and the missing image whose handler must not run
    page_errors.expected += ["Content Security Policy", "status of 404"]
    page = open_page(as_role("viewer"), "/")
    page.evaluate("""() => {
        window.ran = false;
        const s = document.createElement('script');
        s.textContent = 'window.ran = true';
        document.body.append(s);
        document.body.insertAdjacentHTML('beforeend', '<img src="x" onerror="window.ran = true">');
    }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.ran") is False


def test_a_projection_shows_what_it_folded_and_an_admin_rebuilds_it(
        seeded: dict[str, Any], system: System, as_role: Callable[[str], Page]) -> None:
    page = open_page(as_role("viewer"), "/projections")
    row = page.locator("tbody tr", has_text="agent_activity")
    expect(row).to_contain_text("caught up", timeout=10_000)
    expect(row.get_by_role("button", name="Rebuild")).to_have_count(0)  # admins rebuild
    row.get_by_role("link", name="agent_activity").click()
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("section", has_text="State")).to_contain_text("page-echo")
    admin = open_page(as_role("admin"), "/projections")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.locator("tbody tr", has_text="agent_activity").get_by_role("button",
                                                                      name="Rebuild").click()
    # the rebuild folds the log again, and the projection ends caught up with the same
    # state (the page may show the moment before the rebuild began: ask the API)
    deadline = time.monotonic() + DATA_TIMEOUT_S
    with system.api() as api:
        while True:
            status = api.get("/api/v1/projections/agent_activity").json()
            items = api.get("/api/v1/projections/agent_activity/state").json()["items"]
            if status["status"] == "live" and not status["lag_events"] and "page-echo" in items:
                break
            assert time.monotonic() < deadline, (status, items)
            time.sleep(0.2)
    expect(admin.locator("tbody tr", has_text="agent_activity")).to_contain_text("caught up")


def test_an_operator_changes_an_agents_config_and_switches_a_capability_off(
        seeded: dict[str, Any], system: System, as_role: Callable[[str], Page]) -> None:
    viewer = open_page(as_role("viewer"), "/agents/page-echo")
    expect(viewer.locator("section", has_text="Live state")).to_contain_text("idle")
    expect(viewer.get_by_role("button", name="Set")).to_have_count(0)
    expect(viewer.get_by_role("button", name="Disable")).to_have_count(0)
    page = open_page(as_role("operator"), "/agents/page-echo")
    config = page.locator("section", has_text="Config")
    row = config.locator("tbody tr", has_text="repeat")
    row.get_by_label("New value of repeat").fill("three")  # not a number: refused in the page
    row.get_by_role("button", name="Set").click()
    expect(row.locator(".error")).to_contain_text("needs a number")
    row.get_by_label("New value of repeat").fill("3")
    row.get_by_role("button", name="Set").click()
    page.wait_for_load_state()
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("section", has_text="Config").locator("tbody tr", has_text="repeat")
           ).to_contain_text("set by user:operator")
    page.once("dialog", lambda dialog: dialog.accept("maintenance"))
    page.locator("section", has_text="Capabilities").get_by_role("button", name="Disable").click()
    page.wait_for_selector("main[data-ready]")
    capability = page.locator("section", has_text="Capabilities").locator("tbody tr")
    expect(capability).to_contain_text("disabled")
    expect(capability).to_contain_text("maintenance")
    with system.api() as api:
        values = {c["key"]: c["value"] for c in api.get("/api/v1/agents/page-echo/config")
                  .json()["config"]}
        assert values["repeat"] == 3
        caps = api.get("/api/v1/agents/page-echo/capabilities").json()["capabilities"]
        assert caps[0]["enabled"] is False
        # and back on, for the other tests
        api.post("/api/v1/agents/page-echo/capabilities/echoing/enable", json={})


def test_the_sign_in_form_is_accessible(system: System, as_role: Callable[[str], Page]) -> None:
    page = as_role("viewer")
    page.context.clear_cookies()
    page.goto("/")
    page.wait_for_selector("form#login")
    assert axe_violations(page) == []


def test_a_viewer_sees_only_the_pages_of_the_role(seeded: dict[str, Any],
                                                  as_role: Callable[[str], Page],
                                                  page_errors: PageErrors) -> None:
    page_errors.expected.append("status of 403")  # the admin pages, opened on purpose
    page = open_page(as_role("viewer"), "/")
    nav = page.locator("nav.side a")
    listed = set(nav.all_inner_texts())
    assert listed == {p.title for p in PAGES if p.nav and p.role == Role.VIEWER}
    for admin_page in (p for p in PAGES if p.role == Role.ADMIN):
        answer = page.goto(admin_page.path)
        assert answer is not None and answer.status == 403
        expect(page.locator("h1")).to_have_text("Not for your role")
    # and the buttons of changes above the viewer's role are not there
    open_page(page, f"/agents/{seeded['name']}")
    expect(page.get_by_role("button", name="Deprecate")).to_have_count(0)
    open_page(page, "/tasks")
    expect(page.locator("form[data-form='submit-task']")).to_have_count(0)


def test_axe_does_report_what_it_is_asked_to_find(seeded: dict[str, Any],
                                                  as_role: Callable[[str], Page]) -> None:
    """The check above can fail: unreadable text and an unlabelled field are caught."""
    page = open_page(as_role("viewer"), "/")
    page.evaluate("""() => {
        const faint = document.createElement('p');
        faint.textContent = 'faint';
        faint.style.color = '#c8c8c8';  // CSSOM: the page's policy refuses style attributes
        document.querySelector('main').append(faint, document.createElement('input'));
    }""")
    assert {v["id"] for v in axe_violations(page)} >= {"color-contrast", "label"}
