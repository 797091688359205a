"""Run one of the peers' benchmark scripts (``../shared/peers``) against servers we started.

    PEER_REDIS_PORT=... PEER_PG_PORT=... PEER_PG_DB=... PEER_OUT=DIR \\
        bench/.peers-venv/bin/python bench/peer_shim.py ../shared/peers/bench_celery.py ARGS...

The scripts expect their own Redis on 127.0.0.1:6390 and PostgreSQL on 127.0.0.1:5440 and
write next to themselves (``raw.jsonl``, ``celery_worker.log``). Here their ``common``
module is pointed at our ports and at ``PEER_OUT`` (the peers' folder stays untouched),
the two address literals in the scripts themselves (the Celery script's Redis port, the
Procrastinate script's DSNs) are rewritten the same way, and a worker process a script
starts with ``[sys.executable, <script>, ...]`` goes through this shim too. Nothing else
changes: the peers' code runs as published. Standard library only (it runs in the peers'
venv).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SHIM = str(Path(__file__).resolve())
PEER_REDIS = "6390"
PEER_PG = "5440"


def point(source: str, redis_port: str, pg_port: str) -> str:
    """The script's text with the peers' fixed ports replaced by ours."""
    for old, new in ((f"127.0.0.1:{PEER_REDIS}", f"127.0.0.1:{redis_port}"),
                     (f"port={PEER_REDIS}", f"port={redis_port}"),
                     (f"127.0.0.1:{PEER_PG}", f"127.0.0.1:{pg_port}"),
                     (f"port={PEER_PG}", f"port={pg_port}")):
        source = source.replace(old, new)
    return source


def main() -> None:
    script = Path(sys.argv[1]).resolve()
    peers = script.parent
    redis_port = os.environ.get("PEER_REDIS_PORT", PEER_REDIS)
    pg_port = os.environ.get("PEER_PG_PORT", PEER_PG)
    pg_db = os.environ.get("PEER_PG_DB", "bench")
    out = os.environ["PEER_OUT"]
    sys.dont_write_bytecode = True  # no __pycache__ in the peers' folder
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # nor from the workers a script starts
    sys.path.insert(0, str(peers))
    # a Celery worker imports celery_app from PYTHONPATH, since it runs in PEER_OUT
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(peers), *filter(None, [os.environ.get("PYTHONPATH")])])

    import common

    common.HERE = out
    common.RAW = os.path.join(out, "raw.jsonl")
    common.REDIS_URL = f"redis://127.0.0.1:{redis_port}/0"
    common.PG_DSN = f"host=127.0.0.1 port={pg_port} user=postgres dbname={pg_db}"
    common.PG_URL = f"postgresql://postgres@127.0.0.1:{pg_port}/{pg_db}"

    popen = subprocess.Popen

    class Popen(popen):  # type: ignore[type-arg,misc]
        """A worker the script starts as ``python <script> ...`` runs through the shim."""

        def __init__(self, args: Any, *rest: Any, **kw: Any) -> None:
            if isinstance(args, list) and len(args) > 1 and str(args[1]) == str(script):
                args = [args[0], SHIM, *args[1:]]
            super().__init__(args, *rest, **kw)

    subprocess.Popen = Popen  # type: ignore[misc]
    sys.argv = [str(script), *sys.argv[2:]]
    code = compile(point(script.read_text(), redis_port, pg_port), str(script), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(script), "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
