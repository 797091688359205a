"""Hot-path SQL as named, reviewable text: ``store/sql/<name>.<dialect>.sql``."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str, dialect: str) -> str:
    text = resources.files("agentos.store").joinpath("sql", f"{name}.{dialect}.sql")
    lines = text.read_text("utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
