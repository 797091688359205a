"""Benchmark: what access control costs a request, as an A/B in one process.

The same app, the same store, the same client, alternating rounds with the
access guard on and off (``app.dependency_overrides``): ``GET /health`` (no
credential), ``GET /api/v1/agents/{name}`` (a credential from the server's
cache) and ``POST /api/v1/events`` (a credential, plus the audit row written in
the append's transaction). In-process over httpx's ASGI transport, so only the
server's own CPU is measured (``time.process_time`` per request; the fastest
round of each mode is kept, the machine being shared).

    .venv/bin/python bench/bench_access.py [--requests 1000] [--rounds 5] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from typing import Any

from common import ADMIN_PASSWORD as PASSWORD
from common import REPO


async def _noop() -> None:
    return None


async def run(url: str, requests: int, rounds: int) -> list[dict[str, Any]]:
    import httpx

    from agentos import registry, server, templates
    from agentos.api import access
    from agentos.config import Settings
    from agentos.store import open_store, schema

    schema.upgrade(url)
    store = open_store(url)
    await registry.import_yaml(store, templates.read("qa-manager"), publish=True)
    settings = Settings(database_url=url, admin_password=PASSWORD,  # type: ignore[call-arg]
                        run_router=False, run_scheduler=False, _env_file=None)
    app = server.create(settings, store)
    logging.getLogger("agentos.http").setLevel(logging.WARNING)
    out = []
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            login = await client.post("/api/v1/auth/login",
                                      json={"username": "admin", "password": PASSWORD})
            client.headers["Authorization"] = f"Bearer {login.json()['token']}"
            for label, method, path, body in (
                    ("GET /health", "GET", "/health", None),
                    ("GET /api/v1/agents/{name}", "GET", "/api/v1/agents/qa-manager", None),
                    ("POST /api/v1/events", "POST", "/api/v1/events",
                     {"type": "bench.access", "payload": {"n": 1}})):
                best: dict[str, float] = {}
                for _ in range(rounds):
                    for mode in ("on", "off"):
                        app.dependency_overrides = {access.guard: _noop} if mode == "off" else {}
                        began = time.process_time()
                        for _ in range(requests):
                            response = await client.request(method, path, json=body)
                            assert response.status_code < 300, response.text
                        cost = (time.process_time() - began) / requests * 1e6
                        best[mode] = min(best.get(mode, cost), cost)
                out.append({"backend": store.dialect, "endpoint": label,
                            "guard_on_us": round(best["on"]), "guard_off_us": round(best["off"]),
                            "ratio": round(best["on"] / best["off"], 3)})
    finally:
        await store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway cluster")
    args = parser.parse_args()
    rows = asyncio.run(run(f"sqlite:///{tempfile.mkdtemp()}/bench.db", args.requests,
                           args.rounds))
    if args.postgres:
        sys.path.insert(0, str(REPO))
        from tests import pg

        cluster = pg.start()
        try:
            cluster.execute("CREATE DATABASE bench_access")
            rows += asyncio.run(run(cluster.url("bench_access"), args.requests, args.rounds))
        finally:
            cluster.stop()
    print(f"{'backend':10} {'endpoint':28} {'guard on µs':>11} {'off µs':>7} {'on/off':>7}")
    for r in rows:
        print(f"{r['backend']:10} {r['endpoint']:28} {r['guard_on_us']:>11} "
              f"{r['guard_off_us']:>7} {r['ratio']:>7}")
    print("server CPU per request (this process), fastest of the rounds; see the docstring")


if __name__ == "__main__":
    main()
