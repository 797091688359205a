"""The round trips a PostgreSQL store's driver connections make, counted in libpq's
trace of each connection the store opens from then on: a round trip ends with a Sync
(extended protocol; a pipeline sends one for all it holds) or is one Query (simple
protocol: psycopg's BEGIN and COMMIT)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pytest

from agentos.store import Store


class RoundTrips:
    def __init__(self, store: Store, trace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from psycopg import pq

        self.trace = trace
        self.opened: list[IO[str]] = []
        self.connections: list[Any] = []
        connect = store._connect_driver  # type: ignore[attr-defined]

        async def traced() -> Any:
            db = await connect()
            self.connections.append(db)
            self.opened.append(out := trace.open("a"))
            db.pgconn.trace(out.fileno())
            db.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            return db

        monkeypatch.setattr(store, "_connect_driver", traced)

    def _lines(self) -> list[str]:
        for out in self.opened:
            out.flush()
        return self.trace.read_text().splitlines() if self.trace.exists() else []

    def mark(self) -> int:
        return len(self._lines())

    def since(self, mark: int) -> int:
        return sum(1 for line in self._lines()[mark:] if line.split("\t")[:1] == ["F"]
                   and line.split("\t")[2:3] in (["Sync"], ["Query"]))

    def close(self) -> None:
        """Stop the tracing, then close the files (libpq writes to a file's descriptor
        until told to stop, whatever reuses the number)."""
        for db in self.connections:
            if not db.closed:
                db.pgconn.untrace()
        for out in self.opened:
            out.close()
