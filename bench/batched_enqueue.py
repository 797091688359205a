"""Batched enqueue alone, 1,000 tasks a call, in process, beside pgqueuer's batched
enqueue in the same sitting (issue 21, target 4). Each round: AgentOS on SQLite and on
PostgreSQL (``bench_tasks.measure_submit``: a fresh database, ``--n`` tasks through
``queue.submit`` in batches of 1,000, building the ``TaskIn``s included; CPU per task of
this process and of PostgreSQL), then pgqueuer's own script (``bench_pgqueuer.py --n N
--n-single 0 --runs 1 --batch-size 100``: its batched enqueue, then a drain that is not
reported here), all on one durable cluster (fsync and synchronous_commit on). Rounds
alternate so that a busy machine weighs on both; compare the ratios of a round.

    .venv/bin/python bench/batched_enqueue.py                 # 3 rounds of 20,000
    .venv/bin/python bench/batched_enqueue.py --rounds 1 --n 5000 --no-peers

Another tree's code: PYTHONPATH=THAT_TREE/src (the script is this tree's). The peers'
venv: ``make bench/.peers-venv/.installed`` (bench/README.md); ``--peers DIR``: where
``bench_pgqueuer.py`` is (default ``../shared/peers``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench_tasks import BATCH, SHIM, fresh_database, measure_submit, peers_python
from common import PEERS, start_postgres


def pgqueuer_batched(peers: Path, port: int, n: int, workdir: Path) -> float:
    """pgqueuer's batched enqueue rate (jobs/s) from one run of its own script."""
    python = peers_python()
    assert python is not None
    workdir.mkdir()
    env = {**os.environ, "PEER_OUT": str(workdir), "PEER_PG_PORT": str(port),
           "PEER_PG_DB": "pgqueuer", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), str(SHIM), str(peers / "bench_pgqueuer.py"), "--n", str(n),
                    "--n-single", "0", "--runs", "1", "--workers", "2", "--batch-size", "100",
                    "--timeout", "120"], env=env, cwd=workdir, check=True, capture_output=True,
                   timeout=600)
    records = [json.loads(line) for line in (workdir / "raw.jsonl").read_text().splitlines()]
    return float(next(r["value"] for r in records if "enqueue batched" in r["what"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=20_000, help="tasks per backend and round")
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument("--peers-dir", type=Path, default=PEERS)
    args = parser.parse_args()
    if args.n % BATCH:
        parser.error(f"--n must be a multiple of {BATCH}")
    peers = args.peers and peers_python() is not None and \
        (args.peers_dir / "bench_pgqueuer.py").exists()
    if args.peers and not peers:
        print(f"pgqueuer not run: no peers' venv or no {args.peers_dir}/bench_pgqueuer.py")
    print(f"{'round':>5} {'who':22}{'tasks/s':>9}{'x pgqueuer':>11}"
          f"{'us/task: client':>16}{'db':>6}{'other cores':>12}")
    cluster = start_postgres(durable=True)
    try:
        if peers:
            cluster.create_database("pgqueuer")
        with tempfile.TemporaryDirectory(prefix="agentos-bench-enqueue-") as tmp:
            for r in range(args.rounds):
                ours = []
                for backend in ("sqlite", "postgres"):
                    db = fresh_database(backend, f"{backend}_{r}", Path(tmp), cluster)
                    ours.append((backend, measure_submit(db, args.n, 0)["batched"]))
                peer = pgqueuer_batched(args.peers_dir, cluster.port, args.n,
                                        Path(tmp) / f"pgqueuer_{r}") if peers else None
                for backend, m in ours:
                    ratio = f"{m['tasks_per_s'] / peer:10.2f}x" if peer else f"{'-':>11}"
                    db_us = m["db_cpu_us_per_task"]
                    print(f"{r + 1:5d} {'AgentOS ' + backend:22}{m['tasks_per_s']:9,.0f}{ratio}"
                          f"{m['client_cpu_us_per_task']:16.1f}"
                          f"{'-' if db_us is None else f'{db_us:.1f}':>6}"
                          f"{m['cpu_cores']['other']:12.2f}", flush=True)
                if peer:
                    print(f"{r + 1:5d} {'pgqueuer, batched':22}{peer:9,.0f}", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
