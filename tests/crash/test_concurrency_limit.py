"""An agent's concurrency limit holds across processes claiming at the same moment:
six claimer processes race for one agent capped at 3, and at no moment are more
than 3 of its tasks running (on PostgreSQL this needs the per-agent claim lock)."""

import subprocess
import sys
import time
from pathlib import Path

from agentos import agent_spec, queue, registry
from agentos.store import open_store
from agentos.tasks import Status, TaskIn

ROOT = Path(__file__).resolve().parents[2]
CAP = 3
CLAIMERS = 6
TASKS = 120


def peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                   key=lambda edge: (edge[0], edge[1]))  # an end before a start at a tie
    open_now = highest = 0
    for _, step in edges:
        open_now += step
        highest = max(highest, open_now)
    return highest


async def test_concurrent_claimers_never_exceed_the_cap(database_url: str,
                                                        tmp_path: Path) -> None:
    store = open_store(database_url)
    await registry.create(store, agent_spec.from_object(
        {"name": "capped", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.handlers:echo"},
         "limits": {"concurrency": CAP}}), publish=True)
    await queue.submit(store, [TaskIn(agent="capped") for _ in range(TASKS)])
    go_at = time.time() + 2  # after every interpreter has started
    outs = [tmp_path / f"claimer-{n}.log" for n in range(CLAIMERS)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.crash.claimer", database_url,
                               f"c{n}", str(go_at), str(out)], cwd=ROOT)
             for n, out in enumerate(outs)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    spans: dict[str, tuple[float, float]] = {}
    for out in outs:
        for line in out.read_text().splitlines():
            task_id, start, end = line.split()
            assert task_id not in spans  # each task held once
            spans[task_id] = (float(start), float(end))
    done, _ = await queue.list_tasks(store, agent="capped", status=Status.SUCCEEDED, limit=1000)
    await store.close()
    assert len(spans) == len(done) == TASKS
    assert sum(1 for out in outs if out.read_text()) >= 2  # the claimers really competed
    assert peak(list(spans.values())) <= CAP
