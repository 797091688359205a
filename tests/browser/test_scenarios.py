"""What a person does in the dashboard, in Chromium: sign in and out, watch the
event stream, retry a failed task, force-release a lock (and not see the button
as a viewer), see why a task waits and its log come in, ask where an event would go."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import (
    READY_TIMEOUT_MS,
    PageErrors,
    System,
    axe_violations,
    open_page,
    screenshot,
)

# an emitted event shows in the live stream within this: the events page never polls
# nor reloads (events.js adds rows only from its EventSource), so a row that shows at
# all came live; the bound only keeps a loaded machine's stall from failing the test
STREAM_DEADLINE_S = 15.0


def test_sign_in_survives_a_reload_and_sign_out_clears_the_token(
        browser: Browser, system: System, page_errors: PageErrors) -> None:
    context = browser.new_context(base_url=system.url)
    context.on("page", page_errors.watch)
    page = context.new_page()
    # Given a shared link to a page, opened without a session: the sign-in form
    answer = page.goto("/tasks")
    assert answer is not None and answer.status == 401
    screenshot(page, "sign-in")
    page.fill("#username", "operator")
    page.fill("#password", system.passwords["operator"])
    page.click("button[type=submit]")
    # Then the same page, signed in, with the token kept
    page.wait_for_selector("main[data-ready]", timeout=READY_TIMEOUT_MS)
    assert page.url.endswith("/tasks")
    expect(page.locator("#actor")).to_have_text("user:operator (operator)")
    assert page.evaluate("localStorage.getItem('agentos_token')")
    # a reload stays signed in
    page.reload()
    page.wait_for_selector("main[data-ready]", timeout=READY_TIMEOUT_MS)
    expect(page.locator("h1")).to_have_text("Tasks")
    # signing out clears the token and the cookie: the form again, after a reload too
    page.click("#logout")
    page.wait_for_selector("form#login", timeout=READY_TIMEOUT_MS)
    assert page.evaluate("localStorage.getItem('agentos_token')") is None
    page.reload()
    expect(page.locator("form#login")).to_be_visible()
    # a wrong password is refused on the form, which stays
    page.fill("#username", "operator")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).not_to_be_empty()
    context.close()


def test_an_event_emitted_through_the_api_shows_in_the_live_stream(
        as_role: Callable[[str], Page], system: System) -> None:
    page = open_page(as_role("viewer"), "/events")
    expect(page.locator("#stream-status")).to_have_text("live", timeout=READY_TIMEOUT_MS)
    marker = uuid.uuid4().hex
    with system.api("operator") as api:
        r = api.post("/api/v1/events", json={"type": "browser.check", "source": "test",
                                             "payload": {"marker": marker}})
        assert r.status_code == 201, r.text
    row = page.locator("tbody tr", has_text=marker)
    row.wait_for(timeout=STREAM_DEADLINE_S * 1000)  # no reload: it came by the stream
    # newest first, and it links to its page, which shows it and its chain
    assert "browser.check" in page.locator("tbody tr").first.inner_text()
    row.locator("a").first.click()
    page.wait_for_selector("main[data-ready]", timeout=READY_TIMEOUT_MS)
    expect(page.locator("h1")).to_contain_text("Event")
    expect(page.locator(".tree")).to_contain_text("browser.check")


def test_a_failed_task_is_retried_from_its_page(as_role: Callable[[str], Page],
                                                system: System) -> None:
    # Given an agent whose handler always fails, and one task of it, dead-lettered
    name = f"breaker-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        r = api.post("/api/v1/agents", json={
            "name": name, "version": "1.0.0", "limits": {"max_retries": 0},
            "handler": {"type": "python", "target": "tests.handlers:broken"}})
        assert r.status_code == 201, r.text
        assert api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish").status_code == 200
        task = api.post("/api/v1/tasks", json={"agent": name, "input": {}}).json()
    page = open_page(as_role("operator"), f"/tasks/{task['id']}")
    # When it has failed (the page follows it live) and the operator clicks Retry
    expect(page.locator("h1 + .actions .badge, .title-row .badge").first).to_have_text(
        "failed", timeout=10_000)
    expect(page.locator("td .error").first).to_contain_text("bad input")
    page.get_by_role("button", name="Retry").click()
    # Then it runs again: a second attempt, which fails the same way
    # the Attempts table's rows only: the explain card of an ended task lists the
    # attempts too, in its details (a worker woken at once by the retry ends the second
    # attempt before the page's first refresh, and the card then shows it)
    attempts = page.get_by_role("region", name="Attempts", exact=True).locator("tbody tr")
    expect(attempts).to_have_count(2, timeout=30_000)  # a loaded machine's worker
    expect(page.locator(".title-row .badge").first).to_have_text("failed", timeout=30_000)
    screenshot(page, "task-retried")
    with system.api() as api:
        again = api.get(f"/api/v1/tasks/{task['id']}").json()
    assert (again["status"], again["attempt"]) == ("failed", 2)
    # And on a page opened once it had ended (it follows nothing then), Retry makes it
    # live again: the third attempt shows without a reload (it stayed "pending" before)
    page = open_page(page, f"/tasks/{task['id']}")
    expect(page.locator(".title-row .badge").first).to_have_text("failed")
    page.get_by_role("button", name="Retry").click()
    expect(attempts).to_have_count(3, timeout=30_000)
    expect(page.locator(".title-row .badge").first).to_have_text("failed", timeout=30_000)
    # a viewer sees the same task without the button
    viewer = open_page(as_role("viewer"), f"/tasks/{task['id']}")
    expect(viewer.locator(".title-row .badge").first).to_have_text("failed")
    expect(viewer.get_by_role("button", name="Retry")).to_have_count(0)


def test_an_admin_force_releases_a_lock_a_viewer_cannot(as_role: Callable[[str], Page],
                                                        system: System) -> None:
    # Given a lock held by alice with bob waiting in its queue (a long-polling acquire)
    resource = f"device:browser-{uuid.uuid4().hex[:6]}"
    with system.api("operator") as api:
        r = api.post(f"/api/v1/locks/{resource}/acquire", json={"owner": "alice", "ttl_s": 600})
        assert r.json()["granted"] is True
    with ThreadPoolExecutor(1) as pool:
        def wait_for_it() -> dict[str, Any]:
            with system.api("operator") as api:
                return dict(api.post(f"/api/v1/locks/{resource}/acquire", timeout=30.0, json={
                    "owner": "bob", "ttl_s": 600, "wait_s": 20}).json())

        bob = pool.submit(wait_for_it)

        def row_of(page: Page) -> Locator:
            return page.locator("tbody tr", has_text=resource)

        viewer = open_page(as_role("viewer"), "/locks")
        expect(row_of(viewer).locator("ol.queue li")).to_contain_text(["bob"])
        expect(row_of(viewer)).to_contain_text("alice")
        expect(row_of(viewer).get_by_role("button")).to_have_count(0)
        # When an admin takes it from alice
        admin = open_page(as_role("admin"), "/locks")
        admin.on("dialog", lambda dialog: dialog.accept())
        row_of(admin).get_by_role("button", name="Force release").click()
        # Then bob, first in the queue, holds it, and the page says so
        assert bob.result(timeout=10)["granted"] is True
        expect(row_of(admin).locator("td").nth(1)).to_contain_text("bob")
        expect(row_of(admin).locator("ol.queue")).to_have_count(0)
    with system.api("viewer") as api:
        assert api.get(f"/api/v1/locks/{resource}").json()["holder"]["owner"] == "bob"


def test_an_operator_submits_a_task_from_the_tasks_page(as_role: Callable[[str], Page],
                                                        system: System,
                                                        page_errors: PageErrors) -> None:
    page_errors.expected.append("status of 400")  # the unknown agent, submitted on purpose
    name = f"echo-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": name, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish").status_code == 200
    page = open_page(as_role("operator"), "/tasks")
    page.get_by_text("Submit a task").click()
    form = page.locator("form[data-form='submit-task']")
    form.get_by_label("Agent", exact=True).fill(name)
    # input that is not JSON is refused in the page, and nothing is sent
    form.get_by_label("Input (JSON)").fill("{not json")
    form.get_by_role("button", name="Submit task").click()
    expect(form.locator(".error")).to_contain_text("not valid JSON")
    with system.api() as api:
        assert api.get("/api/v1/tasks", params={"agent": name}).json()["tasks"] == []
    # an unknown agent is the API's own error, shown on the form
    form.get_by_label("Agent", exact=True).fill("no-such-agent")
    form.get_by_label("Input (JSON)").fill('{"x": 7}')
    form.get_by_role("button", name="Submit task").click()
    expect(form.locator(".error")).to_contain_text("no-such-agent")
    # a good one opens the task's page, which follows it until it succeeds
    form.get_by_label("Agent", exact=True).fill(name)
    form.get_by_role("button", name="Submit task").click()
    page.wait_for_url("**/tasks/*")
    page.wait_for_selector("main[data-ready]")
    expect(page.locator(".title-row .badge").first).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("section", has_text="Output")).to_contain_text('"x": 7')


LOCAL_INPUT = """iso => { const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
         `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }"""


def test_the_task_list_is_filtered_to_a_window_of_created_time(
        as_role: Callable[[str], Page], system: System) -> None:
    # Given tasks submitted in two batches with a whole second between them
    name = f"window-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": name, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish").status_code == 200

        def batch(ns: range) -> list[str]:
            r = api.post("/api/v1/tasks/batch", json={"tasks": [
                {"agent": name, "input": {"n": n}} for n in ns]})
            assert r.status_code == 201, r.text
            return [t["id"] for t in r.json()["tasks"]]

        early = batch(range(3))
        latest = max(datetime.fromisoformat(t["created_at"]) for t in
                     api.get("/api/v1/tasks", params={"agent": name}).json()["tasks"])
        boundary = latest.replace(microsecond=0) + timedelta(seconds=1)
        time.sleep(max(0.0, (boundary - datetime.now(UTC)).total_seconds()) + 0.1)
        late = batch(range(3, 5))

    def shown(page: Page) -> set[str]:
        page.wait_for_selector("main[data-ready]")
        return {str(row.get_attribute("data-task"))
                for row in page.locator("tbody tr[data-task]").all()}

    # When a viewer picks "created from" the boundary (in the browser's own time zone)
    page = open_page(as_role("viewer"), f"/tasks?agent={name}")
    assert shown(page) == set(early + late)
    picked = page.evaluate(LOCAL_INPUT, boundary.isoformat())
    page.get_by_label("Created from").fill(picked)
    page.get_by_role("button", name="Filter").click()
    # Then the page lists the later batch only, and the URL keeps the moment in UTC
    page.wait_for_url("**since=*")
    assert shown(page) == set(late)
    since = parse_qs(urlparse(page.url).query)["since"][0]
    assert datetime.fromisoformat(since.replace("Z", "+00:00")) == boundary
    # the same moment (Chromium shows a whole minute without its ":00" seconds)
    kept = page.get_by_label("Created from").input_value()
    assert datetime.fromisoformat(kept) == datetime.fromisoformat(picked), (kept, picked)
    screenshot(page, "tasks-window")
    assert axe_violations(page) == []
    # and "created before" the same moment, the earlier one
    page.get_by_label("Created from").fill("")
    page.get_by_label("Created before").fill(picked)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**until=*")
    assert "since" not in parse_qs(urlparse(page.url).query)  # an empty one is dropped
    assert shown(page) == set(early)


def test_an_agent_imported_from_yaml_gets_the_event_emitted_from_the_page(
        as_role: Callable[[str], Page], system: System) -> None:
    name = f"listener-{uuid.uuid4().hex[:6]}"
    # Given an admin imports and publishes an agent from the agents page
    admin = open_page(as_role("admin"), "/agents")
    admin.get_by_text("Import agents from YAML").click()
    form = admin.locator("form[data-form='import-agents']")
    form.get_by_label("Definitions").fill(
        f"name: {name}\nversion: 1.0.0\nhandler: {{type: python, target: 'tests.handlers:echo'}}\n"
        f"triggers:\n  - event: {name}.ping\n")
    form.get_by_label("Publish them").check()
    form.get_by_role("button", name="Import").click()
    admin.wait_for_url(f"**/agents/{name}")
    admin.wait_for_selector("main[data-ready]")
    expect(admin.locator(".title-row .badge").first).to_have_text("published")
    # When an operator emits a matching event from the events page
    page = open_page(as_role("operator"), "/events")
    page.get_by_text("Emit an event").click()
    emit = page.locator("form[data-form='emit-event']")
    emit.get_by_label("Type").fill(f"{name}.ping")
    emit.get_by_label("Payload (JSON)").fill('{"hello": "agent"}')
    emit.get_by_role("button", name="Emit event").click()
    # Then it shows live, and its page shows the route to the agent and the task it made
    row = page.locator("tbody tr", has_text=f"{name}.ping")
    row.wait_for(timeout=STREAM_DEADLINE_S * 1000)
    row.locator("a").first.click()
    page.wait_for_selector("main[data-ready]")
    routes = page.locator("section", has_text="Routes")
    expect(routes.get_by_role("link", name=name)).to_be_visible(timeout=5_000)
    routes.locator("tbody a[href^='/tasks/']").click()
    page.wait_for_selector("main[data-ready]")
    expect(page.locator(".title-row .badge").first).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("section", has_text="Output")).to_contain_text('"hello": "agent"')
    # the agent's tasks are listed newest first, and the list follows new ones live
    first_id = page.url.rsplit("/", 1)[1]
    open_page(page, f"/tasks?agent={name}")
    rows = page.locator("tbody tr[data-task]")
    expect(rows).to_have_count(1)
    with system.api("operator") as api:
        newer = api.post("/api/v1/tasks", json={"agent": name, "input": {"x": 8}}).json()
    expect(rows).to_have_count(2, timeout=5_000)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.task)") == [newer["id"], first_id]


def test_an_approval_approved_in_the_inbox_lets_the_run_go_on(
        as_role: Callable[[str], Page], system: System) -> None:
    # Given a published workflow whose second step waits for an operator's approval
    agent = f"wf-echo-{uuid.uuid4().hex[:6]}"
    workflow = f"wf-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        r = api.post("/api/v1/workflows/import?publish=true", headers={
            "Content-Type": "application/yaml"}, content=(
            f"name: {workflow}\nversion: 1.0.0\nsteps:\n"
            f"  - id: plan\n    agent: {agent}\n    input: {{devices: [a, b]}}\n"
            f"  - id: approve\n    type: approval\n    role: operator\n    depends_on: [plan]\n"
            f"  - id: execute\n    agent: {agent}\n    depends_on: [approve]\n"
            f"    input: {{approved: '{{{{ steps.approve.output.approved }}}}'}}\n"))
        assert r.status_code == 201, r.text
    with system.api("operator") as api:
        run = api.post("/api/v1/workflow-runs", json={"workflow": workflow}).json()
    # the run's page draws its DAG and waits at the approval
    page = open_page(as_role("operator"), f"/workflow-runs/{run['id']}")
    expect(page.locator("tr[data-step='approve']")).to_contain_text("running", timeout=10_000)
    expect(page.locator(".graph canvas").first).to_be_visible()
    expect(page.locator("section#waiting tr[data-waiting='approve']")).to_contain_text(
        "operator role")
    # a viewer sees it in the inbox without the buttons (the step wants an operator)
    of_run = f"a[href='/workflow-runs/{run['id']}']"
    viewer = open_page(as_role("viewer"), "/approvals")
    mine = viewer.locator("article.approval", has=viewer.locator(of_run))
    expect(mine).to_contain_text("Only the operator role or above decides")
    expect(mine.get_by_role("button", name="Approve")).to_have_count(0)
    # When the operator approves it with a comment from the inbox
    inbox = open_page(as_role("operator"), "/approvals")
    item = inbox.locator("article.approval", has=inbox.locator(of_run))
    item.get_by_label("Comment (optional)").fill("looks right")
    item.get_by_role("button", name="Approve").click()
    inbox.wait_for_selector("main[data-ready]")
    # Then the run goes on and ends, its page says so, and the decision is recorded
    expect(page.locator(".title-row .badge").first).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("tr[data-step='execute']")).to_contain_text("succeeded")
    with system.api() as api:
        approvals = api.get("/api/v1/approvals", params={"run_id": run["id"]}).json()["approvals"]
    assert [(a["status"], a["decided_by"], a["comment"]) for a in approvals] == [
        ("approved", "user:operator", "looks right")]
    screenshot(page, "workflow-run")


def test_a_runs_time_series_artifact_is_drawn_as_a_chart(
        as_role: Callable[[str], Page], system: System) -> None:
    # Given a run whose step stored an equity curve (a list of moments and numbers),
    # a trade log (strings too) and a summary (no list)
    agent = f"wf-store-{uuid.uuid4().hex[:6]}"
    workflow = f"wf-{uuid.uuid4().hex[:6]}"
    curve = [{"time": f"2025-10-01T{h:02d}:00:00Z", "equity": 1000.0 + 10 * h, "cash": 500.0}
             for h in range(6)]
    trades = [{"time": "2025-10-01T01:00:00Z", "side": "buy", "qty": 0.1},
              {"time": "2025-10-01T04:00:00Z", "side": "sell", "qty": 0.1}]
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:wf_store"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        r = api.post("/api/v1/workflows/import?publish=true", headers={
            "Content-Type": "application/yaml"}, content=(
            f"name: {workflow}\nversion: 1.0.0\nsteps:\n"
            f"  - id: report\n    agent: {agent}\n"
            f"    input: {{artifacts: '{{{{ input.artifacts }}}}'}}\n"))
        assert r.status_code == 201, r.text
        run = api.post("/api/v1/workflow-runs", json={"workflow": workflow, "input": {
            "artifacts": {"equity_curve": curve, "trades": trades,
                          "results": {"final_equity": 1050.0}}}}).json()
    # When a viewer opens the run's page
    page = open_page(as_role("viewer"), f"/workflow-runs/{run['id']}")
    expect(page.locator(".title-row .badge").first).to_have_text("succeeded", timeout=15_000)
    # Then the curve is drawn as a chart of its two numbers, with them as a table too;
    # the other artifacts are only listed
    figure = page.locator("figure.chart-figure")
    expect(figure).to_have_count(1, timeout=5_000)
    expect(figure.locator("figcaption")).to_have_text("equity_curve (artifact of report)")
    expect(figure.locator("canvas").first).to_be_visible()
    expect(figure.locator("table.numbers tbody tr")).to_have_count(6)
    expect(figure.locator("table.numbers thead")).to_contain_text("equity")
    expect(figure.locator("table.numbers thead")).to_contain_text("cash")
    expect(page.locator("table", has_text="Artifacts").locator("tbody tr")).to_have_count(3)
    screenshot(page, "workflow-run-artifact-chart")


def test_a_waiting_tasks_explain_names_its_gate_and_its_log_comes_live(
        as_role: Callable[[str], Page], system: System) -> None:
    # Given an agent that runs one task at a time, busy with a slow one, and a second
    # task of it waiting
    agent = f"one-at-a-time-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0", "limits": {"concurrency": 1},
            "handler": {"type": "python", "target": "tests.handlers:chatty_slow"}}
        ).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        busy = api.post("/api/v1/tasks", json={"agent": agent, "input": {"seconds": 8}}).json()
        deadline = time.monotonic() + 10
        while api.get(f"/api/v1/tasks/{busy['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the slow task did not start"
            time.sleep(0.1)
        waiting = api.post("/api/v1/tasks", json={"agent": agent, "input": {"seconds": 0.2}}
                           ).json()
    # When a viewer opens the waiting task's page
    page = open_page(as_role("viewer"), f"/tasks/{waiting['id']}")
    # Then its explain names the gate, the agent's full concurrency, and the task holding it
    why = page.locator("section#explain")
    expect(why).to_have_attribute("data-gate", "concurrency")
    expect(why.locator("h2")).to_have_text("Why is this not running?")
    expect(why.locator(".verdict")).to_contain_text("concurrency limit (1) is full")
    expect(why.locator("tr[data-gate='concurrency']")).to_contain_text(busy["id"])
    assert axe_violations(page) == []
    screenshot(page, "task-explain")
    # and the busy task's page shows its log lines once they are written (with its end),
    # by itself, and why it ended
    running = open_page(as_role("viewer"), f"/tasks/{busy['id']}")
    expect(running.locator("section#explain h2")).to_have_text("What it is doing")
    log = running.locator("section#logs tbody tr")
    expect(log).to_have_count(2, timeout=20_000)
    expect(log.nth(0)).to_contain_text("started")
    expect(log.nth(1)).to_contain_text("finished")
    expect(running.locator("section#explain h2")).to_have_text("Why it ended")
    assert axe_violations(running) == []
    screenshot(running, "task-log")
    # the waiting task ran in its turn: its open page moved on by itself
    expect(page.locator(".title-row .badge").first).to_have_text("succeeded", timeout=15_000)
    expect(why.locator("h2")).to_have_text("Why it ended")


def test_where_an_event_would_go_asked_from_the_events_and_agent_pages(
        as_role: Callable[[str], Page], system: System) -> None:
    agent = f"routed-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"},
            "triggers": [{"event": "door.*", "filter": {"floor": 3}}]}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
    page = open_page(as_role("viewer"), "/events")
    form = page.locator("form[data-form='route-explain']")
    form.get_by_label("Event type").fill("door.opened")
    form.get_by_label("Payload (JSON)").fill('{"floor": 2}')
    form.get_by_role("button", name="Explain").click()
    answer = page.locator("[data-answer='route-explain']")
    row = answer.locator("tr", has=page.locator(f"a[href='/agents/{agent}']"))
    expect(row).to_contain_text("no")
    expect(row).to_contain_text("floor")  # the filter that failed
    assert axe_violations(page) == []
    screenshot(page, "events-route-explain")
    # the agent's page asks about itself: floor 3 reaches it
    mine = open_page(as_role("viewer"), f"/agents/{agent}")
    form = mine.locator("form[data-form='route-explain']")
    form.get_by_label("Event type").fill("door.opened")
    form.get_by_label("Payload (JSON)").fill('{"floor": 3}')
    form.get_by_role("button", name="Explain").click()
    verdict = mine.locator("[data-answer='route-explain'] .verdict")
    expect(verdict).to_have_text(f"door.opened would reach {agent}")
    expect(verdict).to_have_attribute("data-routed", "true")
    # nothing was emitted
    with system.api() as api:
        assert api.get("/api/v1/events", params={"type": "door.*"}).json()["events"] == []
