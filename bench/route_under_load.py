"""Why the router falls behind a busy server on PostgreSQL: the router's batches on the
event loop of a process whose other work holds the loop in chunks (as a server parsing
1,000-event POSTs does), each round trip of a batch waiting a whole round of the loop.
Queues ``--events`` events an agent listens to (with a filter on a number past 2**53,
which the router checks itself, reading each event back; none passes, so none makes a
task; an event no trigger names is never queued), then routes them with ``--hogs`` coroutines each
burning ``--chunk-ms`` of CPU between yields; per batch size: routed/s, ms and loop
rounds per batch. ``--hogs 0``: the router alone; ``--single N``: one-event batches.
``--filter none``: a filter the database checks and no event passes (``bench_events``'s
on+l); ``--filter one``: one event of each 1,000 passes it and makes a task (on+t).
Run another tree's code with
PYTHONPATH=THAT_TREE/src."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench_events import FILTER_NONE, FILTER_ONE, FILTER_READ, publish_listener
from common import REPO, start_postgres

from agentos import events, registry, router
from agentos.store import open_store, schema


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


FILTERS = {"read": FILTER_READ, "none": FILTER_NONE, "one": FILTER_ONE}


async def measure(url: str, args: argparse.Namespace) -> None:
    await publish_listener(url, "bench.tick", FILTERS[args.filter])
    store = open_store(url)
    for f in sorted(Path(REPO / "src/agentos/templates").glob("*.yaml")):
        await registry.import_yaml(store, f.read_text(), publish=True)
    drafts = [events.EventIn(type="bench.tick", payload={"i": i, "pad": "x" * 80})
              for i in range(1000)]
    rounds = [0]

    async def count() -> None:
        while True:
            rounds[0] += 1
            await asyncio.sleep(0)

    async def hog(stop: asyncio.Event) -> None:
        while not stop.is_set():
            burn(args.chunk_ms / 1000)
            await asyncio.sleep(0)

    if args.single:
        one = [events.EventIn(type="bench.tick", payload={"i": 0})]
        await router.route_batch(store)
        wall = cpu = 0.0
        for _ in range(args.single):
            await events.append(store, one)
            began, began_cpu = time.perf_counter(), time.process_time()
            await router.route_batch(store)
            wall += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
        print(f"one-event batches: {cpu / args.single * 1000:.2f} ms CPU, "
              f"{wall / args.single * 1000:.2f} ms wall a batch")
        await store.close()
        return
    counter = asyncio.create_task(count())
    for limit in args.batches:
        for _ in range(args.events // 1000):
            await events.append(store, drafts)
        stop = asyncio.Event()
        hogs = [asyncio.create_task(hog(stop)) for _ in range(args.hogs)]
        began, routed, batches, rounds[0] = time.perf_counter(), 0, 0, 0
        while (taken := await router.route_batch(store, limit)) > 0:
            routed, batches = routed + taken, batches + 1
        took = time.perf_counter() - began
        stop.set()
        await asyncio.gather(*hogs)
        batches += 1  # the empty one
        print(f"batch {limit:>5}: {routed / took:8.0f} routed/s  "
              f"{took / batches * 1000:7.1f} ms/batch  "
              f"{rounds[0] / batches:5.1f} loop rounds/batch")
    counter.cancel()
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="queued per batch size")
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")],
                        default=[500, 5000], help="batch sizes, e.g. 500,5000")
    parser.add_argument("--hogs", type=int, default=4)
    parser.add_argument("--chunk-ms", type=float, default=10.0)
    parser.add_argument("--filter", choices=sorted(FILTERS), default="read",
                        help="the listener's filter: read (a number past 2**53, which the "
                             "router reads each event back for; default), none (the "
                             "database checks it, none passes), one (one event a 1,000 "
                             "passes: a task)")
    parser.add_argument("--single", type=int, default=0, metavar="N",
                        help="instead: N times, append one event and route it (no hogs); "
                             "CPU and wall per batch, as a server routing a trickle")
    args = parser.parse_args()
    with start_postgres(durable=True) as cluster:
        url = cluster.create_database("routes")
        schema.upgrade(url)
        asyncio.run(measure(url, args))


if __name__ == "__main__":
    main()
