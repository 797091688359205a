"""The SDK against a real server: the blocking ``Client``'s ``with client.lock(...)``
renews from a thread and releases on exit, ``iterate`` follows pages; both clients'
``stream`` follows the log live and resumes."""

from __future__ import annotations

import asyncio
import time

from agentos.sdk import AsyncClient, Client
from tests.acceptance.conftest import Server


def test_sync_lock_block_and_pages(server: Server) -> None:
    with Client(server.url) as api:
        # the renewing thread beats every ttl/3 (2 s): a late beat (a loaded machine's
        # stall) still comes long before the lease would lapse
        with api.lock("device:pixel-7", "alice", ttl_s=6, wait_s=1) as lease:
            before = api.get_lock("device:pixel-7").holder
            assert before is not None and (before.owner, before.token) == ("alice", lease.token)
            deadline = time.monotonic() + 15
            while True:  # only a renewal moves the expiry later
                after = api.get_lock("device:pixel-7").holder
                assert after is not None and after.token == lease.token
                if after.expires_at > before.expires_at:
                    break
                assert time.monotonic() < deadline, "never renewed"
                time.sleep(0.1)
        assert api.get_lock("device:pixel-7").holder is None and not lease.lost

        for n in range(3):
            api.create_subscription(f"feed-{n}", "feed.*")
        page = api.list_subscriptions(limit=2)
        assert [s.name for s in page.subscriptions] == ["feed-0", "feed-1"] and page.more
        assert [s.name for s in api.iterate(api.list_subscriptions, limit=2)] == [
            "feed-0", "feed-1", "feed-2"]


def test_both_clients_stream_live_and_resume_after_the_last_event_id(server: Server) -> None:
    """``stream`` on either client delivers the matching events in order, each once, and
    a new stream from ``last_event_id`` picks up exactly where the first stopped."""
    with Client(server.url) as api:
        api.emit_batch([{"type": f"s.{n}"} for n in range(3)] + [{"type": "other"}])
        with api.stream("s.*", after_seq=0) as events:
            first = [next(events) for _ in range(2)]
            resume_from = events.last_event_id
        assert [e.type for e in first] == ["s.0", "s.1"]
        assert resume_from == str(first[-1].seq)

    async def follow() -> list[str]:
        async with AsyncClient(server.url) as aapi, \
                await aapi.stream("s.*", last_event_id=resume_from) as events:
            await aapi.emit("s.3")
            return [(await anext(events)).type for _ in range(2)]

    assert asyncio.run(follow()) == ["s.2", "s.3"]
