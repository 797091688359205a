"""The SDK against the app in-process: ``AsyncClient`` over httpx's ASGI transport, typed
results, pages, locks; and that ``Client`` has exactly the same methods."""

from __future__ import annotations

import asyncio
import inspect
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentos import errors
from agentos.api.schemas import agents as agent_models
from agentos.api.schemas import tasks as task_models
from agentos.sdk import AsyncClient, Client
from agentos.sdk.client import tls
from agentos.sdk.core import WaitTimedOut
from agentos.sdk.methods import Methods
from tests.conftest import ADMIN_PASSWORD


@pytest.fixture
async def sdk(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient("http://agentos.test", token="none",
                           transport=httpx.ASGITransport(app=app)) as client:
        await client.login("admin", ADMIN_PASSWORD)
        yield client


def public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(cls, name).plan)
            for name in dir(cls) if not name.startswith("_")
            and hasattr(getattr(cls, name), "plan")}


def test_both_clients_have_every_method_with_one_signature() -> None:
    methods = public(Methods)
    assert public(Client) == public(AsyncClient) == methods
    assert {"submit", "wait", "get_task", "list_tasks", "acquire_lock", "emit"} <= set(methods)
    # every method is a plan, written once: blocking on one client, a coroutine on the other
    assert not inspect.iscoroutinefunction(Client("http://x").get_task)
    assert inspect.iscoroutinefunction(AsyncClient("http://x").get_task)


def loaded_roots(client: Client | AsyncClient) -> int:
    """The CA certificates of the context the client's connection pool shakes hands with."""
    context: ssl.SSLContext = client.http._transport._pool._ssl_context  # type: ignore[union-attr]
    return int(context.cert_store_stats()["x509_ca"])


def test_a_plain_http_client_loads_no_certificates_and_https_verifies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    plain = tls("http://127.0.0.1:8000")
    assert isinstance(plain, ssl.SSLContext)
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname  # fails closed
    with Client("http://127.0.0.1:9", token="t") as sync:
        assert loaded_roots(sync) == 0
    with Client("https://127.0.0.1:9", token="t") as secure:
        assert loaded_roots(secure) > 0
    aio = AsyncClient("http://127.0.0.1:9", token="t")
    assert loaded_roots(aio) == 0
    asyncio.run(aio.close())
    monkeypatch.setenv("Http_Proxy", "https://proxy.example:3128")  # any case, as httpx
    assert tls("http://127.0.0.1:8000") is True


async def test_results_are_the_api_models(sdk: AsyncClient) -> None:
    agent = await sdk.create_agent({"name": "a", "version": "1.0.0",
                                    "handler": {"type": "python", "target": "m:f"}})
    assert isinstance(agent, agent_models.AgentVersion) and agent.status == "draft"
    await sdk.publish("a", "1.0.0")
    task = await sdk.submit("a", {"n": 1}, priority=7)
    assert isinstance(task, task_models.TaskDetail)
    assert (task.agent, task.priority, task.status, task.final) == ("a", 7, "pending", False)
    assert task.created_at.tzinfo is not None  # a datetime, not text
    shown = await sdk.get_task(task.id)
    assert shown.id == task.id and shown.attempts == []
    page = await sdk.list_tasks(agent="a")
    assert [t.id for t in page.tasks] == [task.id] and not page.more


async def test_iterate_follows_every_page(sdk: AsyncClient) -> None:
    for n in range(5):
        await sdk.create_schedule(f"s{n}", "tick", interval_s=3600)
    first = await sdk.list_schedules(limit=2)
    assert [s.name for s in first.schedules] == ["s0", "s1"]
    assert first.next_after == "s1" and first.more
    names = [s.name async for s in sdk.iterate(sdk.list_schedules, limit=2)]
    assert names == [f"s{n}" for n in range(5)]


async def test_lists_keyed_by_name_or_id_page_in_key_order(sdk: AsyncClient) -> None:
    """Users, subscriptions and API keys (paging.keyed) page two at a time to the whole
    list, each item once, in the order of its key; a revoked key is left out."""
    for n in range(4):
        await sdk.create_user(f"u{n}", "a-long-password-1")
        await sdk.create_subscription(f"sub{n}")
    keys = [(await sdk.create_api_key(f"k{n}", "viewer")).id for n in range(4)]
    await sdk.revoke_api_key(keys[1])

    async def every(method: Any, key: str) -> list[str]:
        return [getattr(i, key) async for i in sdk.iterate(method, limit=2)]

    users = await every(sdk.list_users, "username")
    assert users == sorted(users) and {f"u{n}" for n in range(4)} <= set(users)
    assert await every(sdk.list_subscriptions, "name") == [
        f"sub{n}" for n in range(4)]
    assert await every(sdk.list_api_keys, "id") == sorted(
        [keys[0], *keys[2:]])
    first = await sdk.list_users(limit=2)
    assert first.more and first.next_after == first.users[-1].username


async def test_lock_block_holds_renews_and_releases(sdk: AsyncClient) -> None:
    # a renewal every ttl/3 (2 s): a late one (a loaded machine's stall) still comes
    # long before the lease would lapse, and only a renewal moves the expiry later
    async with sdk.lock("device:pixel-7", "alice", ttl_s=6, wait_s=1) as lease:
        held = await sdk.get_lock("device:pixel-7")
        assert held.holder is not None and held.holder.owner == "alice"
        assert held.holder.token == lease.token
        first_expiry = held.holder.expires_at
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            renewed = await sdk.get_lock("device:pixel-7")
            assert renewed.holder is not None and renewed.holder.token == lease.token
            if renewed.holder.expires_at > first_expiry:
                break
            assert asyncio.get_running_loop().time() < deadline, "never renewed"
            await asyncio.sleep(0.1)
        assert not lease.lost
    assert (await sdk.get_lock("device:pixel-7")).holder is None


async def test_errors_carry_the_code_and_a_401_says_how_to_log_in(
        sdk: AsyncClient, app: FastAPI) -> None:
    with pytest.raises(errors.NotFound) as missing:
        await sdk.get_task("nope")
    assert missing.value.code == "task_not_found"
    async with AsyncClient("http://agentos.test", token="wrong",
                           transport=httpx.ASGITransport(app=app)) as stranger:
        with pytest.raises(errors.Unauthorized) as refused:
            await stranger.list_tasks()
    assert "agentos login --url http://agentos.test" in refused.value.message


async def test_wait_long_polls_until_the_task_ends(sdk: AsyncClient) -> None:
    await sdk.create_agent({"name": "w", "version": "1.0.0",
                            "handler": {"type": "python", "target": "m:f"}})
    await sdk.publish("w", "1.0.0")
    task = await sdk.submit("w", {})
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    sdk.http.event_hooks["request"].append(count)
    started = asyncio.get_running_loop().time()
    with pytest.raises(WaitTimedOut) as late:
        await sdk.wait(task.id, timeout_s=0.4)
    assert late.value.details == {"task_id": task.id, "status": "pending"}
    assert asyncio.get_running_loop().time() - started >= 0.4
    assert len(sent) == 1  # the server held the one request (a long poll), no polling
    waiting = asyncio.ensure_future(sdk.wait(task.id, timeout_s=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    # a remote worker (the HTTP worker protocol) runs it while the wait is held
    claimed = await sdk.http.post("/api/v1/tasks/claim", json={"worker_id": "far"})
    [got] = claimed.json()["tasks"]
    await sdk.http.post(f"/api/v1/tasks/{got['id']}/complete",
                        json={"attempt": got["attempt"], "output": {"n": 2}})
    done = await asyncio.wait_for(waiting, 5)
    assert (done.status, done.output, [a.outcome for a in done.attempts]) == (
        "succeeded", {"n": 2}, ["succeeded"])
    with pytest.raises(WaitTimedOut):  # submit(wait=True) is submit, then wait
        await sdk.submit("w", {}, wait=True, wait_timeout_s=0.2)
    with pytest.raises(errors.NotFound) as unknown:
        await sdk.wait("nope", timeout_s=1)
    assert unknown.value.code == "task_not_found"
