"""Backup and restore of a whole installation (``agentos db backup|restore``).

The copy itself is the store's (``store.backup``: SQLite's online backup API,
pg_dump/pg_restore); this module says what may be overwritten and reports what a
backup holds, so a restore can be compared with it row count by row count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentos.errors import Conflict, InvalidInput
from agentos.store import backup as store_backup
from agentos.store.backup import Progress


@dataclass(frozen=True)
class Report:
    """What a backup or restore moved: the file, the database, rows by table, timing."""

    file: Path
    kind: str  # sqlite | postgresql
    revision: str | None
    counts: dict[str, int]
    bytes: int
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.file), "kind": self.kind, "schema": self.revision,
                "bytes": self.bytes, "seconds": round(self.seconds, 3), "rows": self.rows,
                "tables": self.counts}


def backup(url: str, file: Path, overwrite: bool = False) -> Report:
    """Back up the database at ``url`` into ``file`` (refused if it exists, unless
    ``overwrite``); the servers and workers may keep running meanwhile."""
    check_backup(file, overwrite)
    started = time.monotonic()
    held = store_backup.backup(url, file)
    return Report(file, store_backup.kind_of_url(url), held.revision, held.counts,
                  file.stat().st_size, time.monotonic() - started)


def check_backup(file: Path, overwrite: bool = False) -> None:
    """Refuse a backup file that cannot be written, before any work."""
    if file.is_dir():
        raise InvalidInput(f"{file} is a directory: name the backup file", code="bad_path")
    if file.exists() and not overwrite:
        raise Conflict(f"{file} exists: pass --force to replace it", code="backup_exists")
    if not file.parent.is_dir():
        raise InvalidInput(f"no directory {file.parent} to write {file.name} into",
                           code="bad_path")


check_restore = store_backup.check_restore


def restore(file: Path, url: str, replace: bool = False,
            progress: Progress | None = None) -> Report:
    """Restore ``file`` into the database at ``url``: an empty one, or with ``replace``
    one whose tables are replaced. Stop its servers and workers first."""
    started = time.monotonic()
    held = store_backup.restore(file, url, replace, progress)
    return Report(file, store_backup.kind_of_url(url), held.revision, held.counts,
                  file.stat().st_size, time.monotonic() - started)
