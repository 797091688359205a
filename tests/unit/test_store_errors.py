"""Driver errors become one clear domain error each, with none of the driver's text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from agentos.errors import Unavailable
from agentos.store import errors


def test_a_full_sqlite_disk_is_disk_full(tmp_path: Path) -> None:
    """SQLite's own error for a full disk (here from max_page_count, the same
    SQLITE_FULL a full file system gives) becomes 503 disk_full."""
    db = sqlite3.connect(tmp_path / "full.db")
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(100):
            db.execute("INSERT INTO t VALUES (?)", ("x" * 1000,))
    translated = errors.from_sqlite(full.value)
    assert isinstance(translated, Unavailable) and translated.code == "disk_full"
    assert "disk" in translated.message and translated.details == {}


@pytest.mark.parametrize(("state", "code"), [
    ("25006", "database_read_only"), ("53100", "disk_full"), ("08006", "database_unavailable"),
    ("57P01", "database_unavailable"), ("40P01", "database_busy"),
    ("23505", "integrity_conflict"), ("22P05", "invalid_input"), ("42601", "database_error")])
def test_postgres_errors_by_sqlstate(state: str, code: str) -> None:
    error = psycopg.errors.lookup(state)("driver text that must not leak")
    translated = errors.from_postgres(error)
    assert translated.code == code
    assert "driver text" not in translated.message and "reason" not in translated.details


def test_a_value_psycopg_itself_refuses_is_invalid_input() -> None:
    # raised before anything is sent: "PostgreSQL text fields cannot contain NUL bytes"
    translated = errors.from_postgres(psycopg.DataError("text fields cannot contain NUL"))
    assert (translated.status, translated.code) == (422, "invalid_input")
