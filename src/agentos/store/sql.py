"""Hot-path SQL as named, reviewable text: ``store/sql/<name>.<dialect>.sql``.

A statement may include a fragment of CTEs another one shares: ``/*include NAME*/``
is replaced by the text of ``NAME.<dialect>.sql``. Comment lines and indentation are
dropped, so the text sent stays short enough for psycopg to cache its parsing (it
parses a statement over 4 kB again on every execution).
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
    body = "\n".join(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("--"))
    return _INCLUDE.sub(lambda m: query(m.group(1), dialect), body)


@cache
def statements(name: str, dialect: str) -> tuple[str, ...]:
    """A file of several statements, each ended by ``;`` at the end of a line."""
    return tuple(s.strip() for s in query(name, dialect).split(";\n") if s.strip())


_PARAM = re.compile(r"(?<!:):(\w+)")


@cache
def for_driver(statement: str) -> str:
    """A statement with ``:name`` parameters as psycopg writes them (``%(name)s``)."""
    return _PARAM.sub(r"%(\1)s", statement.replace("%", "%%"))
