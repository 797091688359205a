"""The dashboard's other actions, each through the REST API, in Chromium: pause and
resume a schedule; cancel a workflow run and rerun one from its failed step; reject
an approval with a comment; create and revoke an API key; cancel a running task;
create and delete a budget; create and disable a user; verify the audit chain,
intact and then tampered with; work the task list with the keyboard; open a failed
task's traceback; see a worker's load errors. (This module has a server and a worker
of its own: one test breaks the audit chain on purpose, another leaves the worker
unable to load an agent.)"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import System, axe_violations, open_page, screenshot


def publish_workflow(system: System, steps: str, handler: str = "echo") -> str:
    """A published agent and a published workflow of ``steps`` (YAML, AGENT for the
    agent's name); the workflow's name."""
    agent = f"act-{uuid.uuid4().hex[:6]}"
    workflow = f"wf-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0", "limits": {"max_retries": 0},
            "handler": {"type": "python", "target": f"tests.handlers:{handler}"}}
        ).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        r = api.post("/api/v1/workflows/import?publish=true", headers={
            "Content-Type": "application/yaml"}, content=(
            f"name: {workflow}\nversion: 1.0.0\nsteps:\n" + steps.replace("AGENT", agent)))
        assert r.status_code == 201, r.text
    return workflow


def start_run(system: System, workflow: str) -> str:
    with system.api("operator") as api:
        r = api.post("/api/v1/workflow-runs", json={"workflow": workflow})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def test_an_admin_pauses_and_resumes_a_schedule_a_viewer_cannot(
        as_role: Callable[[str], Page], system: System) -> None:
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/schedules", json={
            "name": name, "cron": "0 2 * * *", "event": {"type": "qa.nightly"}}
        ).status_code == 201
    viewer = open_page(as_role("viewer"), "/schedules")
    row = viewer.locator("tbody tr", has_text=name)
    expect(row).to_contain_text("active")
    expect(row.get_by_role("button")).to_have_count(0)
    # the admin pauses it: the row says paused, with no next fire, and the API agrees
    page = open_page(as_role("admin"), "/schedules")
    row = page.locator("tbody tr", has_text=name)
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".badge")).to_have_text("paused")
    with system.api() as api:
        assert api.get(f"/api/v1/schedules/{name}").json()["paused"] is True
    # and resumes it: active again, with its next fire
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".badge")).to_have_text("active")
    with system.api() as api:
        again = api.get(f"/api/v1/schedules/{name}").json()
    assert again["paused"] is False and again["next_run_at"]
    expect(row).to_contain_text(again["next_run_at"][:4])


def test_a_task_only_schedule_shows_its_last_fires(as_role: Callable[[str], Page],
                                                   system: System) -> None:
    """A schedule that only submits tasks fires no event: its page lists each fire all
    the same, with a link to the task it submitted."""
    agent = f"tick-{uuid.uuid4().hex[:6]}"
    name = f"pulse-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        assert api.post("/api/v1/schedules", json={
            "name": name, "interval_s": 0.5, "task": {"agent": agent}}).status_code == 201
        deadline = time.monotonic() + 15
        while len(api.get(f"/api/v1/schedules/{name}/fires").json()["fires"]) < 2:
            assert time.monotonic() < deadline, "the scheduler did not fire twice"
            time.sleep(0.1)
        assert api.post(f"/api/v1/schedules/{name}/pause").status_code == 200
        fires = api.get(f"/api/v1/schedules/{name}/fires").json()["fires"]
    page = open_page(as_role("viewer"), "/schedules")
    page.locator("tbody tr", has_text=name).get_by_role("link", name=name).click()
    page.wait_for_url(f"**/schedules/{name}")
    rows = page.locator("tr[data-fire]")
    expect(rows).to_have_count(len(fires))
    for row, fire in zip(rows.all(), fires, strict=True):
        expect(row.locator(f'a[href="/tasks/{fire["task_id"]}"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)  # a viewer's page
    screenshot(page, "schedule-fires")
    assert axe_violations(page) == []
    with system.api() as api:
        assert api.delete(f"/api/v1/schedules/{name}").status_code == 204


def test_an_operator_cancels_a_running_workflow_run(as_role: Callable[[str], Page],
                                                    system: System) -> None:
    workflow = publish_workflow(system, "  - id: wait\n    agent: AGENT\n"
                                        "    input: {seconds: 60}\n", handler="slow")
    run_id = start_run(system, workflow)
    page = open_page(as_role("operator"), f"/workflow-runs/{run_id}")
    expect(page.locator("tr[data-step='wait']")).to_contain_text("running", timeout=10_000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".title-row .badge").first).to_have_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    with system.api() as api:
        assert api.get(f"/api/v1/workflow-runs/{run_id}").json()["status"] == "cancelled"


def test_a_failed_run_is_rerun_from_its_step_and_followed_live(
        as_role: Callable[[str], Page], system: System) -> None:
    workflow = publish_workflow(system, "  - id: check\n    agent: AGENT\n",
                                handler="broken")
    run_id = start_run(system, workflow)
    page = open_page(as_role("operator"), f"/workflow-runs/{run_id}")
    expect(page.locator(".title-row .badge").first).to_have_text("failed", timeout=15_000)
    step = page.locator("tr[data-step='check']")
    expect(step.locator("td").nth(4).locator("a")).to_have_count(1)
    # a viewer has no rerun button
    viewer = open_page(as_role("viewer"), f"/workflow-runs/{run_id}")
    expect(viewer.get_by_role("button", name="Rerun from check")).to_have_count(0)
    # When the operator reruns it from the failed step
    page.get_by_role("button", name="Rerun from check").click()
    # Then the page follows the run again: a second task for the step, which fails too
    expect(step.locator("td").nth(4).locator("a")).to_have_count(2, timeout=15_000)
    expect(page.locator(".title-row .badge").first).to_have_text("failed", timeout=15_000)
    with system.api() as api:
        run = api.get(f"/api/v1/workflow-runs/{run_id}").json()
    [check] = [s for s in run["steps"] if s["id"] == "check"]
    assert len(check["tasks"]) == 2 and run["status"] == "failed"
    screenshot(page, "workflow-run-rerun")


def test_an_approval_rejected_with_a_comment_is_the_steps_decision(
        as_role: Callable[[str], Page], system: System) -> None:
    workflow = publish_workflow(system, "  - id: approve\n    type: approval\n"
                                        "    role: operator\n"
                                        "  - id: execute\n    agent: AGENT\n"
                                        "    depends_on: [approve]\n")
    run_id = start_run(system, workflow)
    with system.api() as api:
        deadline = time.monotonic() + 10
        while not api.get("/api/v1/approvals", params={"run_id": run_id}).json()["approvals"]:
            assert time.monotonic() < deadline, "the run did not ask for its approval"
            time.sleep(0.1)
    of_run = f"a[href='/workflow-runs/{run_id}']"
    inbox = open_page(as_role("operator"), "/approvals")
    item = inbox.locator("article.approval", has=inbox.locator(of_run))
    item.get_by_label("Comment (optional)").fill("not during the freeze")
    item.get_by_role("button", name="Reject").click()
    inbox.wait_for_selector("main[data-ready]")
    with system.api() as api:
        approvals = api.get("/api/v1/approvals", params={"run_id": run_id}).json()["approvals"]
    assert [(a["status"], a["decided_by"], a["comment"]) for a in approvals] == [
        ("rejected", "user:operator", "not during the freeze")]
    # the decided ones are listed under "all", also as the CLI and the examples say it
    for shown in ("/approvals?status=", "/approvals?status=all"):
        decided = open_page(as_role("viewer"), shown)
        item = decided.locator("article.approval", has=decided.locator(of_run))
        expect(item.locator(".badge")).to_have_text("rejected")
        expect(decided.get_by_label("Status")).to_have_value("")
    run_page = open_page(as_role("viewer"), f"/workflow-runs/{run_id}")
    # the run's approval step ends with the decision, the comment and who made it
    step = run_page.locator("tr[data-step='approve']")
    expect(step).to_contain_text('"approved":false', timeout=10_000)
    expect(step).to_contain_text("not during the freeze")
    expect(step).to_contain_text("user:operator")


def test_an_admin_creates_an_api_key_shown_once_and_revokes_it(
        as_role: Callable[[str], Page], system: System) -> None:
    page = open_page(as_role("admin"), "/api-keys")
    name = f"ci-{uuid.uuid4().hex[:6]}"
    form = page.locator("form[data-form='create-key']")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    # the key works against the API, with the role it was given
    with system.api() as admin:
        me = admin.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["role"] == "viewer", me.text
    assert axe_violations(page) == []
    open_page(page, "/api-keys")
    row = page.locator("tbody tr", has_text=name)
    expect(row.locator(".badge")).to_have_text("active")
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    # it leaves the list of keys in use, and shows as revoked among all of them
    expect(page.locator("tbody tr", has_text=name)).to_have_count(0)
    page.get_by_label("Show").select_option("true")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**include_revoked=true*")
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("tbody tr", has_text=name).locator(".badge")).to_have_text("revoked")
    with system.api() as admin:
        assert admin.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}
                         ).status_code == 401


def test_an_operator_cancels_a_running_task_from_its_page(as_role: Callable[[str], Page],
                                                          system: System) -> None:
    agent = f"sleepy-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:slow"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        task = api.post("/api/v1/tasks", json={"agent": agent, "input": {"seconds": 60}}).json()
    viewer = open_page(as_role("viewer"), f"/tasks/{task['id']}")
    page = open_page(as_role("operator"), f"/tasks/{task['id']}")
    expect(page.locator(".title-row .badge").first).to_have_text("running", timeout=10_000)
    expect(viewer.get_by_role("button", name="Cancel")).to_have_count(0)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    # the worker stops the handler; the page follows the task until it has ended
    expect(page.locator(".title-row .badge").first).to_have_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    with system.api() as api:
        assert api.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "cancelled"


def test_an_admin_creates_and_deletes_a_budget_on_the_llm_page(
        as_role: Callable[[str], Page], system: System) -> None:
    target = f"spender-{uuid.uuid4().hex[:6]}"
    viewer = open_page(as_role("viewer"), "/llm")
    expect(viewer.locator("form[data-form='create-budget']")).to_have_count(0)
    page = open_page(as_role("admin"), "/llm")
    page.get_by_text("New budget").click()
    form = page.locator("form[data-form='create-budget']")
    form.get_by_label("Agent or model (not for global)").fill(target)
    form.get_by_label("Measure").select_option("tokens")
    form.get_by_label("Limit").fill("5000")
    form.get_by_role("button", name="Create budget").click()
    page.wait_for_load_state()
    page.wait_for_selector("main[data-ready]")
    row = page.locator("tbody tr", has_text=target)
    expect(row).to_contain_text("5,000 tokens a day")
    with system.api() as api:
        [made] = [b for b in api.get("/api/v1/budgets").json()["budgets"]
                  if b["target"] == target]
    assert (made["scope"], made["metric"], made["period"], made["limit"], made["hard"]) == (
        "agent", "tokens", "day", 5000.0, True)
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("tbody tr", has_text=target)).to_have_count(0)
    with system.api() as api:
        assert not [b for b in api.get("/api/v1/budgets").json()["budgets"]
                    if b["target"] == target]


def test_an_admin_creates_a_user_who_signs_in_then_disables_them(
        as_role: Callable[[str], Page], system: System) -> None:
    username = f"ana-{uuid.uuid4().hex[:6]}"
    page = open_page(as_role("admin"), "/users")
    form = page.locator("form[data-form='create-user']")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill("a-long-enough-password")
    form.get_by_label("Role").select_option("operator")
    form.get_by_role("button", name="Create user").click()
    page.wait_for_selector("main[data-ready]")
    row = page.locator("tbody tr", has_text=username)
    expect(row.locator(".badge")).to_have_text("active")
    login = {"username": username, "password": "a-long-enough-password"}
    r = httpx.post(f"{system.url}/api/v1/auth/login", json=login, timeout=10.0)
    assert r.status_code == 200, r.text
    me = httpx.get(f"{system.url}/api/v1/auth/me", timeout=10.0,
                   headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert me.json()["role"] == "operator", me.text
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Disable").click()
    expect(page.locator("tbody tr", has_text=username).locator(".badge")).to_have_text(
        "disabled")
    assert httpx.post(f"{system.url}/api/v1/auth/login", json=login,
                      timeout=10.0).status_code == 401
    assert axe_violations(page) == []


def tab_to(page: Page, test: str, most: int = 60) -> None:
    """Press Tab until the focused element passes ``test`` (JavaScript, of ``el``)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => Boolean({test}))(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {test}")


def test_the_task_list_is_worked_with_the_keyboard_alone(as_role: Callable[[str], Page],
                                                         system: System) -> None:
    agent = f"keys-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.handlers:echo"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        task = api.post("/api/v1/tasks", json={"agent": agent, "input": {"k": 1}}).json()
    page = open_page(as_role("operator"), "/tasks")
    # the first Tab reaches "Skip to content", which moves the focus to the page itself
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # from there Tab reaches the agent filter; typing and Enter filters the list
    tab_to(page, "el.closest('label')?.textContent.startsWith('Agent')")
    page.keyboard.type(agent)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**agent={agent}*")
    page.wait_for_selector("main[data-ready]")
    # and Tab reaches the task's link, which Enter opens
    tab_to(page, f"el.getAttribute('href') === '/tasks/{task['id']}'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tasks/{task['id']}")
    page.wait_for_selector("main[data-ready]")
    expect(page.locator("h1")).to_contain_text("Task")


def test_the_audit_page_verifies_the_chain_and_names_a_broken_row(
        as_role: Callable[[str], Page], system: System) -> None:
    page = open_page(as_role("admin"), "/audit")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("intact")
    # When a row is changed behind the API's back, by someone who can drop the
    # database's guard (its hash no longer matches)
    with sqlite3.connect(system.database_url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        seq = db.execute("SELECT min(seq) FROM audit_log").fetchone()[0]
        db.execute("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = ?", (seq,))
    page.get_by_role("button", name="Verify the chain").click()
    # Then the check says broken, at that row
    expect(page.locator("#verify-result")).to_contain_text("broken")
    expect(page.locator("#verify-result")).to_contain_text(f"at row {seq}")
    screenshot(page, "audit-broken")


def test_a_failed_tasks_page_opens_its_traceback(as_role: Callable[[str], Page],
                                                 system: System) -> None:
    agent = f"crashy-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0", "limits": {"max_retries": 0},
            "handler": {"type": "python", "target": "tests.handlers:flaky"}}).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        task = api.post("/api/v1/tasks", json={
            "agent": agent, "input": {"fails": 5}, "type": "analyze",
            "metadata": {"requested_by": "ops-lead", "week": "2026-W49"}}).json()
    page = open_page(as_role("viewer"), f"/tasks/{task['id']}")
    expect(page.locator(".title-row .badge").first).to_have_text("failed", timeout=15_000)
    # its type is a fact of its state, its metadata a card of its own
    state = page.locator("section", has=page.locator("h2", has_text="State"))
    expect(state.locator("dt", has_text="type").locator("+ dd")).to_have_text("analyze")
    labels = page.locator("section", has=page.locator("h2", has_text="Metadata"))
    expect(labels).to_contain_text('"requested_by"')
    expect(labels).to_contain_text("ops-lead")
    # the list shows each task's type, and filters by it
    listed = open_page(as_role("viewer"), f"/tasks?agent={agent}&type=analyze")
    row = listed.locator(f"tr[data-task='{task['id']}']")
    expect(row.locator("td").nth(2)).to_have_text("analyze")
    other = open_page(as_role("viewer"), f"/tasks?agent={agent}&type=report")
    expect(other.locator(f"tr[data-task='{task['id']}']")).to_have_count(0)
    failure = page.locator("section", has=page.locator("h2", has_text="Error"))
    expect(failure).to_contain_text("RuntimeError: attempt 1 fails")
    # the traceback is folded; opened with the keyboard, it names the handler's line
    summary = failure.locator("details summary", has_text="traceback")
    summary.focus()
    page.keyboard.press("Enter")
    trace = failure.locator("details pre")
    expect(trace).to_be_visible()
    expect(trace).to_contain_text("in flaky")
    expect(trace).to_contain_text("tests/handlers.py")


def test_a_worker_that_cannot_load_an_agent_says_why_on_the_workers_pages(
        as_role: Callable[[str], Page], system: System) -> None:
    # Given an agent whose handler's module does not exist, and a task of it
    agent = f"unloadable-{uuid.uuid4().hex[:6]}"
    with system.api() as api:
        assert api.post("/api/v1/agents", json={
            "name": agent, "version": "1.0.0",
            "handler": {"type": "python", "target": "tests.no_such_module:run"}}
        ).status_code == 201
        assert api.post(f"/api/v1/agents/{agent}/versions/1.0.0/publish").status_code == 200
        api.post("/api/v1/tasks", json={"agent": agent}).raise_for_status()
    # Then the workers list names the agent and the import error in the worker's row
    page = open_page(as_role("viewer"), "/workers")
    row = page.locator("tbody tr", has_text="browser-worker")
    expect(row).to_contain_text(agent, timeout=15_000)
    expect(row).to_contain_text("cannot load")
    expect(row).to_contain_text("no_such_module")
    assert axe_violations(page) == []
    # and the worker's own page has a card of what it cannot load, linking the agent
    worker = open_page(as_role("viewer"), "/workers/browser-worker")
    failed = worker.locator(f"tr[data-unloadable='{agent}']")
    expect(failed).to_contain_text("no_such_module")
    expect(failed.get_by_role("link", name=agent)).to_have_attribute("href", f"/agents/{agent}")
    screenshot(worker, "worker-unloadable")
