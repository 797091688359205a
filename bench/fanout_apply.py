"""How long the workflow engine takes to apply the ends of a fan-out's children when
they reach it in small batches, as they do while workers finish them one by one.

    python bench/fanout_apply.py --children 1000 5000 [--batch 20] [--item-bytes 200]
                                 [--url URL]

Starts one fan-out run of N no-op children (items of ``--item-bytes``), lets a
burst worker finish every child with the engine stopped, then times the engine's
consumer catching up over those events in batches of ``--batch``: linear work takes
5x as long for 5x the children.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FAN = """
name: fan
version: 1.0.0
steps:
  - id: children
    agent: noop
    for_each: "{{ input.items }}"
    input: {i: "{{ item }}"}
"""


async def measure(url: str, children: int, batch: int, item_bytes: int) -> float:
    from agentos import agent_spec, consumers, registry
    from agentos.store import open_store, schema
    from agentos.worker.loop import Worker
    from agentos.workflows import definitions, engine, runs

    schema.upgrade(url)
    store = open_store(url)
    try:
        await registry.create(store, agent_spec.from_object({
            "name": "noop", "version": "1.0.0",
            "handler": {"type": "python", "target": "workflow_handlers:noop"}}),
            publish=True)
        await definitions.import_yaml(store, FAN, publish=True)
        consumer = dataclasses.replace(engine.consumer(store), batch=batch)
        run, _ = await runs.start(store, runs.StartIn("fan", input={
            "items": [{"n": n, "pad": "x" * item_bytes} for n in range(children)]}),
            by="bench", detail=False)
        await consumers.catch_up(store, consumer)
        await asyncio.wait_for(Worker(store, burst=True, concurrency=32).run(), 600)
        began = time.perf_counter()
        await asyncio.wait_for(consumers.catch_up(store, consumer), 600)
        took = time.perf_counter() - began
        found = await runs.get(store, run["id"])
        assert found["status"] == "succeeded", found["status"]
        return took
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--item-bytes", type=int, default=150,
                        help="characters of padding in each item")
    parser.add_argument("--url", help="a PostgreSQL URL (default: a new SQLite file)")
    args = parser.parse_args()
    for n in args.children:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.url or f"sqlite:///{tmp}/fan.db"
            took = asyncio.run(measure(url, n, args.batch, args.item_bytes))
        print(f"{n:>6} children: engine applied their ends in {took:.2f} s "
              f"({took / n * 1000:.2f} ms a child, batches of {args.batch})")


if __name__ == "__main__":
    main()
