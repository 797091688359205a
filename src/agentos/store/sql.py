"""Hot-path SQL as named, reviewable text: ``store/sql/<name>.<dialect>.sql``."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str, dialect: str) -> str:
    text = resources.files("agentos.store").joinpath("sql", f"{name}.{dialect}.sql")
    lines = text.read_text("utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()


@cache
def statements(name: str, dialect: str) -> tuple[str, ...]:
    """A file of several statements, each ended by ``;`` at the end of a line."""
    return tuple(s.strip() for s in query(name, dialect).split(";\n") if s.strip())
