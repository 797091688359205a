"""Handler kinds run by a real worker: command, http, llm, and sub-agent calls.

The webhook and the LLM provider are real HTTP servers on 127.0.0.1; the LLM one
(tests/fake_llm.py) is the only outside service faked.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentos import agent_spec, events, queue, registry
from agentos.config import LlmPrice
from agentos.store import Store
from agentos.tasks import Status, Task, TaskIn
from agentos.worker.handlers import Context, HandlerError, SubTaskFailed, Usage, command, http, llm
from agentos.worker.loop import Worker
from tests.fake_llm import FakeLlm
from tests.ports import free_port

FAST_BACKOFF = {"backoff": {"initial_s": 0.05, "max_s": 0.1, "jitter": False}}


async def agent(store: Store, name: str, handler: dict[str, Any], version: str = "1.0.0",
                **extra: Any) -> None:
    limits = {**FAST_BACKOFF, **extra.pop("limits", {})}
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": version, "handler": handler, "limits": limits, **extra}),
        publish=True)


async def submit(store: Store, name: str, **input: Any) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=name, input=input)])
    return task.id


async def run(store: Store, *task_ids: str, concurrency: int = 2,
              lease_s: float = 30.0) -> list[Task]:
    """Run burst workers until every task is final (retries come back after backoff)."""
    for _ in range(50):
        worker = Worker(store, burst=True, concurrency=concurrency, lease_s=lease_s)
        await asyncio.wait_for(worker.run(), 30)
        done = [await queue.get(store, i) for i in task_ids]
        if all(d.status.final for d in done):
            return done
        await asyncio.sleep(0.05)
    raise AssertionError("tasks did not finish")


def python_command(code: str, **extra: Any) -> dict[str, Any]:
    return {"type": "command", "argv": [sys.executable, "-c", code], **extra}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


# ----------------------------------------------------------------- command

ECHO_SCRIPT = """
import json, os, sys
data = json.load(sys.stdin)
print(json.dumps({"sum": data["a"] + data["b"], "cwd": os.getcwd(),
                  "task": os.environ.get("AGENTOS_TASK_ID"),
                  "greeting": os.environ.get("GREETING"),
                  "secret": os.environ.get("AGENTOS_TEST_SECRET")}))
"""

SLEEPER_SCRIPT = """
import json, os, signal, subprocess, sys, time
data = json.load(sys.stdin)
if data.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "60"])
with open(data["pids"], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


async def test_command_success(store: Store, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_TEST_SECRET", "the worker's, not the child's")
    await agent(store, "adder", python_command(ECHO_SCRIPT, env={"GREETING": "hi"},
                                               cwd=str(tmp_path)))
    task_id = await submit(store, "adder", a=2, b=3)
    [task] = await run(store, task_id)
    assert task.status is Status.SUCCEEDED
    assert task.output == {"sum": 5, "cwd": str(tmp_path), "task": task_id,
                               "greeting": "hi", "secret": None}


async def test_command_non_zero_exit_fails_with_stderr(store: Store) -> None:
    code = "import sys; print('disk on fire', file=sys.stderr); sys.exit(3)"
    await agent(store, "crasher", python_command(code), limits={"max_retries": 1})
    [task] = await run(store, await submit(store, "crasher"))
    assert task.status is Status.FAILED and len(task.attempts) == 2  # retryable
    assert "exited with status 3" in task.error["message"]
    assert "disk on fire" in task.error["message"]
    # each attempt's error keeps the stderr it wrote (its tail)
    assert [a.error["stderr"] for a in task.attempts if a.error] == ["disk on fire"] * 2


async def test_command_bad_json_fails_for_good(store: Store) -> None:
    await agent(store, "chatty", python_command("print('hello there')"),
                limits={"max_retries": 3})
    [task] = await run(store, await submit(store, "chatty"))
    assert task.status is Status.FAILED and len(task.attempts) == 1
    assert "JSON object on stdout" in task.error["message"]
    assert "hello there" in task.error["message"]


async def test_command_whose_program_goes_missing_fails_for_good(
        store: Store, tmp_path: Path) -> None:
    # a program missing when the worker loads the handler leaves the task to another
    # worker (test_unloadable); one gone by the time it runs fails the attempt for good
    program = tmp_path / "vanishing"
    program.write_text("#!/bin/sh\necho '{}'\n")
    program.chmod(0o755)
    await agent(store, "vanishing", {"type": "command", "argv": [str(program)]},
                limits={"max_retries": 3})
    worker = Worker(store, poll_interval=0.05)
    running = asyncio.create_task(worker.run())
    try:
        first = await submit(store, "vanishing")
        await until_final(store, first)
        program.unlink()
        task = await until_final(store, await submit(store, "vanishing"))
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
    assert task.status is Status.FAILED and len(task.attempts) == 1
    assert f"cannot start {program}" in task.error["message"]


async def until_final(store: Store, task_id: str) -> Task:
    for _ in range(400):
        task = await queue.get(store, task_id)
        if task.status.final:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end")


async def test_command_timeout_kills_the_child_and_its_children(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a grace far longer than the run may take: ending well within it shows SIGTERM was
    # enough, whatever the machine's load (a 5 s grace against 4 s failed on a busy one)
    monkeypatch.setattr(command, "TERM_GRACE", 60.0)
    await agent(store, "sleeper", python_command(SLEEPER_SCRIPT),
                limits={"timeout_s": 0.5, "max_retries": 0})
    pids = tmp_path / "pids"
    started = time.monotonic()
    [task] = await run(store, await submit(store, "sleeper", pids=str(pids)))
    assert time.monotonic() - started < 30  # SIGTERM was enough: no grace period spent
    assert task.status is Status.FAILED and task.attempts[0].outcome == "timeout"
    leader, grandchild = map(int, pids.read_text().split())
    assert await gone(leader) and await gone(grandchild)


async def test_command_ignoring_sigterm_is_killed(store: Store, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "TERM_GRACE", 0.3)
    await agent(store, "stubborn", python_command(SLEEPER_SCRIPT),
                limits={"timeout_s": 0.5, "max_retries": 0})
    pids = tmp_path / "pids"
    [task] = await run(store, await submit(store, "stubborn", pids=str(pids),
                                           ignore_term=True))
    assert task.attempts[0].outcome == "timeout"
    leader, grandchild = map(int, pids.read_text().split())
    assert await gone(leader) and await gone(grandchild)


async def test_cancelling_a_running_command_stops_it(store: Store, tmp_path: Path) -> None:
    await agent(store, "sleeper", python_command(SLEEPER_SCRIPT))
    pids = tmp_path / "pids"
    task_id = await submit(store, "sleeper", pids=str(pids))
    worker = Worker(store, concurrency=1, lease_s=0.3)  # heartbeats carry the cancel
    running = asyncio.create_task(worker.run())
    for _ in range(200):
        if pids.exists() and pids.read_text():
            break
        await asyncio.sleep(0.02)
    await queue.cancel(store, task_id)
    for _ in range(200):
        if (await queue.get(store, task_id)).status.final:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(running, 10)
    task = await queue.get(store, task_id)
    assert task.status is Status.CANCELLED and task.attempts[0].outcome == "cancelled"
    leader, grandchild = map(int, pids.read_text().split())
    assert await gone(leader) and await gone(grandchild)


# -------------------------------------------------------------------- http


class Webhook:
    """A webhook on 127.0.0.1 that records requests; the path picks the answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Reply(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append({"path": self.path, "body": json.loads(body) if body else None,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, headers, data = hook.answer(self.path, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        as_json = {"Content-Type": "application/json"}
        if path == "/hook":
            return 200, as_json, json.dumps({"ok": True, "got": json.loads(body)}).encode()
        if path == "/to-hook":
            return 307, {"Location": "/hook"}, b""
        if path == "/to-other-host":  # same server, but a host the allow-list lacks
            return 307, {"Location": f"http://localhost:{self.port}/hook"}, b""
        if path == "/text":
            return 200, {"Content-Type": "text/plain"}, b"hello"
        if path == "/unavailable":
            return 503, as_json, b'{"error": "busy"}'
        return 404, as_json, b'{"error": "no such hook"}'


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook()
    monkeypatch.setenv("AGENTOS_HTTP_ALLOW", f"example.com, 127.0.0.1:{hook.port}")
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
    hook.thread.join(5)


async def test_http_posts_the_input_and_returns_the_reply(store: Store,
                                                          webhook: Webhook) -> None:
    await agent(store, "notify", {"type": "http", "url": webhook.url("/hook"),
                                  "headers": {"X-Token": "t0k"}})
    task_id = await submit(store, "notify", text="hi")
    [task] = await run(store, task_id)
    assert task.output == {"ok": True, "got": {"text": "hi"}}
    [request] = webhook.requests
    assert request["headers"]["x-token"] == "t0k"
    assert request["headers"]["x-agentos-task-id"] == task_id
    assert request["headers"]["content-type"] == "application/json"


async def test_http_follows_redirects_only_to_allowed_hosts(store: Store,
                                                            webhook: Webhook) -> None:
    await agent(store, "inside", {"type": "http", "url": webhook.url("/to-hook")})
    await agent(store, "outside", {"type": "http", "url": webhook.url("/to-other-host")},
                limits={"max_retries": 3})
    inside, outside = await run(store, await submit(store, "inside", n=1),
                                await submit(store, "outside", n=2))
    assert inside.output == {"ok": True, "got": {"n": 1}}
    assert outside.status is Status.FAILED and len(outside.attempts) == 1
    assert "refusing to call localhost" in outside.error["message"]
    # the refused hop was never made
    assert sorted(r["path"] for r in webhook.requests) == ["/hook", "/to-hook",
                                                           "/to-other-host"]


async def test_http_refuses_hosts_not_allowed(store: Store, webhook: Webhook,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTOS_HTTP_ALLOW")  # the default: nothing is allowed
    await agent(store, "notify", {"type": "http", "url": webhook.url("/hook")},
                limits={"max_retries": 3})
    [task] = await run(store, await submit(store, "notify"))
    assert task.status is Status.FAILED and len(task.attempts) == 1
    assert "AGENTOS_HTTP_ALLOW" in task.error["message"]
    assert webhook.requests == []


async def test_http_errors_retry_only_when_it_may_help(
        store: Store, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    closed_port = free_port()  # a port nothing listens on
    monkeypatch.setenv("AGENTOS_HTTP_ALLOW", f"127.0.0.1:{webhook.port},127.0.0.1:{closed_port}")
    limits = {"max_retries": 1}
    await agent(store, "busy", {"type": "http", "url": webhook.url("/unavailable")},
                limits=limits)
    await agent(store, "dead", {"type": "http", "url": f"http://127.0.0.1:{closed_port}/x"},
                limits=limits)
    await agent(store, "lost", {"type": "http", "url": webhook.url("/nowhere")},
                limits=limits)
    await agent(store, "texty", {"type": "http", "url": webhook.url("/text")}, limits=limits)
    busy, dead, lost, texty = await run(store, *[await submit(store, n) for n in
                                                 ("busy", "dead", "lost", "texty")])
    assert [len(t.attempts) for t in (busy, dead, lost, texty)] == [2, 2, 1, 1]
    assert all(t.status is Status.FAILED for t in (busy, dead, lost, texty))
    assert "answered 503" in busy.error["message"]
    assert "ConnectError" in dead.error["message"]
    assert "answered 404" in lost.error["message"]
    assert "without a JSON body" in texty.error["message"]


def test_allow_list_matching() -> None:
    allowed = http.AllowList.parse(" Hooks.Example.com, api.test:8443, *.corp.test, [::1]:9000 ")
    assert allowed.allows(httpx.URL("https://hooks.example.com/x"))
    assert allowed.allows(httpx.URL("http://hooks.example.com:8080/x"))  # any port
    assert allowed.allows(httpx.URL("https://api.test:8443/x"))
    assert not allowed.allows(httpx.URL("https://api.test/x"))  # 443, not 8443
    assert allowed.allows(httpx.URL("https://a.b.corp.test/x"))
    assert not allowed.allows(httpx.URL("https://corp.test/x"))
    assert not allowed.allows(httpx.URL("https://evilcorp.test/x"))
    assert allowed.allows(httpx.URL("http://[::1]:9000/x"))
    assert not allowed.allows(httpx.URL("http://[::1]:9001/x"))
    assert not http.AllowList.parse("").allows(httpx.URL("http://127.0.0.1/"))
    with pytest.raises(HandlerError, match="bad port"):
        http.AllowList.parse("host:http")


# --------------------------------------------------------------------- llm


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlm]:
    fake = FakeLlm().start()
    monkeypatch.setenv("AGENTOS_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("AGENTOS_LLM_API_KEY", "sk-test")
    monkeypatch.setenv("AGENTOS_LLM_PRICES", json.dumps(
        {"fake-small": {"prompt": 1.0, "completion": 2.0}}))
    yield fake
    fake.stop()


MODEL = {"provider": "openai", "name": "fake-small", "params": {"temperature": 0.2}}


async def test_llm_fills_the_prompt_and_records_tokens_and_cost(
        store: Store, fake_llm: FakeLlm) -> None:
    await agent(store, "summariser", {
        "type": "llm", "system": "You write for {input.user.name}.",
        "prompt": "Summarise: {input.text} (tags {input.tags})"}, model=MODEL)
    [task] = await run(store, await submit(store, "summariser", text="a long story",
                                           tags=["x", "y"], user={"name": "Ada"}))
    assert task.status is Status.SUCCEEDED
    assert task.output == {"content": 'echo: Summarise: a long story (tags ["x", "y"])',
                               "model": "fake-small"}
    [request] = fake_llm.requests
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "fake-small", "temperature": 0.2,
        "messages": [{"role": "system", "content": "You write for Ada."},
                     {"role": "user", "content": 'Summarise: a long story (tags ["x", "y"])'}]}
    [attempt] = task.attempts
    assert attempt.tokens == {"prompt": 12, "completion": 5, "total": 17}
    assert attempt.cost == pytest.approx((12 * 1.0 + 5 * 2.0) / 1000)


async def test_llm_json_reply_becomes_fields_and_unknown_price_is_no_cost(
        store: Store, fake_llm: FakeLlm) -> None:
    await agent(store, "judge", {
        "type": "llm", "prompt": "Judge {input.case}", "response_format": "json",
        "model": {"provider": "openai", "name": "fake-large"}}, model=MODEL)
    [task] = await run(store, await submit(store, "judge", case="c1"))
    assert task.output == {"verdict": "pass", "echo": "Judge c1", "model": "fake-large",
                               "content": '{"verdict": "pass", "echo": "Judge c1"}'}
    [request] = fake_llm.requests
    assert request["body"]["model"] == "fake-large"  # the handler's model wins
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert task.attempts[0].tokens["total"] == 17 and task.attempts[0].cost is None


async def test_llm_failures(store: Store, fake_llm: FakeLlm,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"max_retries": 1}
    await agent(store, "missing", {"type": "llm", "prompt": "Hi {input.user.name}"},
                model=MODEL, limits=limits)
    await agent(store, "overloaded", {"type": "llm", "prompt": "Hi"},
                model={"provider": "openai", "name": "status-503"}, limits=limits)
    await agent(store, "unauthorised", {"type": "llm", "prompt": "Hi"},
                model={"provider": "openai", "name": "status-401"}, limits=limits)
    missing, overloaded, unauthorised = await run(store, *[
        await submit(store, "missing", user={"id": 1}), await submit(store, "overloaded"),
        await submit(store, "unauthorised")])
    assert [len(t.attempts) for t in (missing, overloaded, unauthorised)] == [1, 2, 1]
    assert "no input.user.name" in missing.error["message"]
    assert "answered 503" in overloaded.error["message"]
    assert "answered 401" in unauthorised.error["message"]
    assert len(fake_llm.requests) == 3  # none for the prompt that could not be filled

    monkeypatch.delenv("AGENTOS_LLM_BASE_URL")
    [unset] = await run(store, await submit(store, "overloaded"))
    assert len(unset.attempts) == 1 and "AGENTOS_LLM_BASE_URL" in unset.error["message"]


async def test_llm_tokens_are_recorded_when_the_attempt_fails_after_the_reply(
        store: Store, fake_llm: FakeLlm) -> None:
    await agent(store, "judge", {"type": "llm", "prompt": "Judge", "response_format": "json"},
                model={"provider": "openai", "name": "prose"}, limits={"max_retries": 1})
    [task] = await run(store, await submit(store, "judge"))
    assert task.status is Status.FAILED and "asked for a JSON object" in task.error["message"]
    assert [a.tokens for a in task.attempts] == [{"prompt": 12, "completion": 5, "total": 17}] * 2
    assert [a.outcome for a in task.attempts] == ["failed", "failed"]


def test_prompt_templates() -> None:
    data = {"a": {"b": "deep"}, "n": 3, "items": ["x", {"y": 1}], "s": "{input.a}"}
    assert llm.fill("{input.a.b}/{input.n}/{input.items.1.y}", data) == "deep/3/1"
    assert llm.fill("{input.s} stays literal, {not.this}", data) == "{input.a} stays literal, " \
                                                                   "{not.this}"
    assert llm.fill("{input}", {"k": "v"}) == '{"k": "v"}'
    with pytest.raises(HandlerError, match=r"no input\.a\.c") as caught:
        llm.fill("{input.a.c}", data)
    assert not caught.value.retryable
    with pytest.raises(HandlerError, match=r"no input\.items\.5"):
        llm.fill("{input.items.5}", data)


def test_prices_and_usage() -> None:
    done = llm.Completion(content="", model="m-2024", prompt_tokens=1000, completion_tokens=500)
    prices = {"m": LlmPrice(prompt=0.5, completion=1.5)}
    assert llm.price(prices, ["m", "m-2024"], done) == pytest.approx(0.5 + 0.75)
    assert llm.price(prices, ["other"], done) is None
    usage = Usage()
    assert usage.tokens is None and usage.cost is None
    usage.add(10, 5, 0.25)
    usage.add(1, 1, 0.5)
    assert usage.tokens == {"prompt": 11, "completion": 6, "total": 17} and usage.cost == 0.75
    usage.add(1, 1, None)
    assert usage.cost is None  # one unpriced call makes the total unknown
    assert llm.parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(HandlerError):
        llm.parse_json("[1, 2]")


# ---------------------------------------------------------------- ctx.call


async def parent(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    try:
        out = await ctx.call(data.get("child", "child"), {"n": data["n"]})
    except SubTaskFailed as exc:
        return {"failed": str(exc), "child_status": exc.task["status"]}
    return {"child": out}


async def child(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    if data["n"] < 0:
        raise HandlerError("negative", retryable=False)
    if data["n"] == 0:
        await asyncio.sleep(30)
    return {"double": data["n"] * 2, "version": ctx.agent["version"]}


PARENT = {"type": "python", "target": "tests.contract.test_handler_kinds:parent"}
CHILD = {"type": "python", "target": "tests.contract.test_handler_kinds:child"}


async def test_call_runs_a_sub_agent_and_returns_its_output(store: Store) -> None:
    await agent(store, "child", CHILD, version="1.0.0")
    await agent(store, "child", CHILD, version="2.0.0")
    await agent(store, "parent", PARENT, permissions={"call_sub_agents": True},
                sub_agents=[{"name": "child", "version": "^1"}])
    parent_id = await submit(store, "parent", n=21)
    [done] = await run(store, parent_id)
    assert done.output == {"child": {"double": 42, "version": "1.0.0"}}
    [sub] = [t for t in (await queue.list_tasks(store, agent="child"))[0]]
    assert sub.correlation_id == done.correlation_id
    assert sub.causation_id == parent_id
    [root] = await events.correlation(store, done.correlation_id)
    assert (root["kind"], root["id"]) == ("task", parent_id)
    assert sub.id in {c["id"] for c in root["children"] if c["kind"] == "task"}


async def test_call_reports_a_failed_sub_agent(store: Store) -> None:
    await agent(store, "child", CHILD)
    await agent(store, "parent", PARENT, permissions={"call_sub_agents": True})
    [done] = await run(store, await submit(store, "parent", n=-1))
    assert done.output["child_status"] == "failed"
    assert "sub-agent child task" in done.output["failed"]
    assert "negative" in done.output["failed"]


async def test_call_needs_the_permission(store: Store) -> None:
    await agent(store, "child", CHILD)
    await agent(store, "parent", PARENT, limits={"max_retries": 3})
    [done] = await run(store, await submit(store, "parent", n=1))
    assert done.status is Status.FAILED and len(done.attempts) == 1
    assert "may not call sub-agents" in done.error["message"]
    assert (await queue.list_tasks(store, agent="child"))[0] == []


async def test_call_only_declared_sub_agents(store: Store) -> None:
    await agent(store, "child", CHILD)
    await agent(store, "parent", PARENT, permissions={"call_sub_agents": True},
                sub_agents=[{"name": "other"}])
    [done] = await run(store, await submit(store, "parent", n=1))
    assert done.status is Status.FAILED
    assert "child is not among the sub_agents of parent" in done.error["message"]


async def test_a_timed_out_caller_cancels_its_sub_task(store: Store) -> None:
    await agent(store, "child", CHILD)
    await agent(store, "parent", PARENT, permissions={"call_sub_agents": True},
                limits={"timeout_s": 0.5, "max_retries": 0})
    parent_id = await submit(store, "parent", n=0)  # the child sleeps 30 s
    [done] = await run(store, parent_id, lease_s=0.3)  # heartbeats carry the cancel
    [sub] = (await queue.list_tasks(store, agent="child"))[0]
    assert done.attempts[0].outcome == "timeout"
    assert (await queue.get(store, sub.id)).status is Status.CANCELLED
