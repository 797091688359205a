"""Hot-path SQL as named, reviewable text: ``store/sql/<name>.<dialect>.sql``.

A statement may include a fragment of CTEs another one shares: ``/*include NAME*/``
is replaced by the text of ``NAME.<dialect>.sql``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"/\*include (\w+)\*/")


@cache
def query(name: str, dialect: str) -> str:
    text = resources.files("agentos.store").joinpath("sql", f"{name}.{dialect}.sql")
    lines = text.read_text("utf-8").splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
    return _INCLUDE.sub(lambda m: query(m.group(1), dialect), body)


@cache
def statements(name: str, dialect: str) -> tuple[str, ...]:
    """A file of several statements, each ended by ``;`` at the end of a line."""
    return tuple(s.strip() for s in query(name, dialect).split(";\n") if s.strip())
