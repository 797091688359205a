"""Free TCP ports on 127.0.0.1 for the servers the tests start as other processes.

A port is picked here, its socket closed, and the child binds it a moment later. Under
pytest-xdist another worker's pick could take the same port in between (the kernel
gives ``bind(0)`` any free port), and the test would then talk to the other worker's
server. So each xdist worker picks from a range of its own, below the kernel's
ephemeral ports (which ``bind(0)`` and outgoing connections use), going round it; in
one process, the kernel picks.
"""

from __future__ import annotations

import itertools
import os
import socket

FIRST = 20_000  # the first worker's first port
PER_WORKER = 1_500  # ports a worker goes round: 8 workers end at 31,999, under 32,768
MAX_WORKERS = 8

_turn = itertools.count()


def free_port() -> int:
    """A port nothing listens on now, and no other test process picks."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    index = int(worker[2:]) if worker[2:].isdigit() else None
    if index is None or index >= MAX_WORKERS:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    first = FIRST + index * PER_WORKER
    for _ in range(PER_WORKER):
        port = first + next(_turn) % PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # taken (or still closing): the next one
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + PER_WORKER - 1}")
