"""A SQLite store notices its file removed or replaced under it (one stat a write
transaction) and never makes a new empty one in its place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentos.errors import Unavailable
from agentos.store import open_store


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    shutil.copyfile(sqlite_template, tmp_path / "agentos.db")
    return f"sqlite:///{tmp_path / 'agentos.db'}"


async def test_a_store_opened_on_a_removed_file_does_not_make_it_again(
        sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    try:
        await store.ping()
        (tmp_path / "agentos.db").unlink()
        with pytest.raises(Unavailable) as gone:
            async with store.write():
                pass
        assert gone.value.code == "database_unavailable"
        assert not (tmp_path / "agentos.db").exists()
    finally:
        await store.close()


async def test_a_replaced_file_is_refused_and_a_restored_one_taken(
        sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "agentos.db"
    store = open_store(sqlite_url)
    try:
        async with store.write():
            pass
        path.rename(tmp_path / "kept.db")
        shutil.copyfile(tmp_path / "kept.db", path)  # the same bytes, another file
        with pytest.raises(Unavailable, match="replaced"):
            async with store.write():
                pass
        path.unlink()
        (tmp_path / "kept.db").rename(path)  # the very file it opened, back in place
        async with store.write():
            pass
    finally:
        await store.close()

