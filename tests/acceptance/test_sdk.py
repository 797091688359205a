"""The blocking ``Client`` against a real server: ``with client.lock(...)`` renews from a
thread and releases on exit, ``iterate`` follows pages."""

from __future__ import annotations

import time

from agentos.sdk import Client
from tests.acceptance.conftest import Server


def test_sync_lock_block_and_pages(server: Server) -> None:
    with Client(server.url) as api:
        with api.lock("device:pixel-7", "alice", ttl_s=0.6, wait_s=1) as lease:
            before = api.get_lock("device:pixel-7").holder
            assert before is not None and (before.owner, before.token) == ("alice", lease.token)
            time.sleep(0.5)  # the renewing thread beats every ttl/3
            after = api.get_lock("device:pixel-7").holder
            assert after is not None and after.expires_at > before.expires_at
        assert api.get_lock("device:pixel-7").holder is None and not lease.lost

        for n in range(3):
            api.create_subscription(f"feed-{n}", "feed.*")
        page = api.list_subscriptions(limit=2)
        assert [s.name for s in page.subscriptions] == ["feed-0", "feed-1"] and page.more
        assert [s.name for s in api.iterate(api.list_subscriptions, limit=2)] == [
            "feed-0", "feed-1", "feed-2"]
