"""The layers as a test: walks ``src/agentos`` (ast) and fails on an import across a
layer the wrong way, or on the database leaking into the domain.

- the domain (every module outside ``api/``, ``cli/``, ``dashboard/``, ``sdk/``,
  ``store/`` and ``migrations/``) imports nothing of ``api/``, ``cli/``,
  ``dashboard/`` or ``sdk/`` (the process entry points in ``ENTRY_POINTS`` excepted);
- ``store/`` imports no domain module, only the modules in ``SHARED``;
- a route module (``api/routes/``) imports nothing of ``store/``: it calls the domain;
- a domain module never reads a ``dialect``, calls ``driver()`` or
  ``exec_driver_sql``, imports ``sqlalchemy.dialects``, ``psycopg``, ``sqlite3`` or
  SQLAlchemy's ``text``, and holds no SQL text.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
SHELLS = ("api", "cli", "dashboard", "sdk")  # the ways in: HTTP, command line, pages, SDK
NOT_DOMAIN = (*SHELLS, "store", "migrations")
# processes' entry points: they put the layers together, so may import a shell
ENTRY_POINTS = {
    "agentos.server": "starts the API app with the background loops",
    "agentos.examples": "runs an example's scenario through the SDK, as a user would",
}
# modules of no layer, importing no agentos module but each other, that store/ may use
SHARED = ("agentos.errors", "agentos.ids", "agentos.aio", "agentos.patterns")
DRIVERS = ("sqlalchemy.dialects", "psycopg", "sqlite3")
# SQL as this code writes it (upper case keywords), not prose in a message
SQL = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b"
                 r"|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bLOCK\s+TABLE\b"
                 r"|\bPRAGMA\s+\w+|\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|TRIGGER)\b")


@dataclass(frozen=True)
class Module:
    name: str  # agentos.x.y
    tree: ast.Module
    package: bool = False  # an __init__.py

    @property
    def room(self) -> str | None:
        """The package under agentos it lives in (None for a top-level module)."""
        parts = [*self.name.split("."), *(["__init__"] if self.package else [])]
        return parts[1] if len(parts) > 2 else None

    @property
    def is_domain(self) -> bool:
        return self.room not in NOT_DOMAIN

    def imports(self) -> list[str]:
        """Every module (and imported name, as module.name) this module imports."""
        found: list[str] = []
        package = self.name if self.package else self.name.rsplit(".", 1)[0]
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 \
                        else package
                    base = f"{anchor}.{base}" if base else anchor
                found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        return found


def load(path: Path) -> Module:
    name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    return Module(name, ast.parse(path.read_text("utf-8"), str(path)),
                  path.name == "__init__.py")


def modules() -> list[Module]:
    return [load(p) for p in sorted((SRC / "agentos").rglob("*.py"))]


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def violations(module: Module) -> list[str]:
    """What ``module`` does against the layering, one line each."""
    found: list[str] = []
    imports = module.imports()
    shells = tuple(f"agentos.{s}" for s in SHELLS)
    if module.room == "store":
        found += [f"store imports the domain: {i}" for i in imports
                  if i.startswith("agentos.") and not _in(i, ("agentos.store", *SHARED))]
    if module.name.startswith("agentos.api.routes."):
        found += [f"route imports the store: {i}" for i in imports
                  if _in(i, ("agentos.store",))]
    if not module.is_domain:
        return found
    if module.name not in ENTRY_POINTS:
        found += [f"domain imports a shell: {i}" for i in imports if _in(i, shells)]
    found += [f"domain imports a driver: {i}" for i in imports if _in(i, DRIVERS)]
    found += ["domain imports sqlalchemy.text" for i in imports if i == "sqlalchemy.text"]
    docstrings = _docstrings(module.tree)
    for node in ast.walk(module.tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr == "dialect":
            found.append(f"line {line}: reads a dialect")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("driver", "exec_driver_sql"):
            found.append(f"line {line}: calls {node.func.attr}()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings and SQL.search(node.value):
            found.append(f"line {line}: SQL text {node.value[:40]!r}")
    return found


ALL = modules()


@pytest.mark.parametrize("module", ALL, ids=[m.name for m in ALL])
def test_module_keeps_its_layer(module: Module) -> None:
    assert violations(module) == []


def test_shared_modules_are_leaves() -> None:
    """What store/ may import depends on no agentos module outside ``SHARED``."""
    by_name = {m.name: m for m in ALL}
    for name in SHARED:
        imported = [i for i in by_name[name].imports()
                    if i.startswith("agentos.") and not _in(i, SHARED)]
        assert imported == [], name


def test_entry_points_exist() -> None:
    names = {m.name for m in ALL}
    assert set(ENTRY_POINTS) <= names


def _check(name: str, source: str) -> list[str]:
    return violations(Module(name, ast.parse(source)))


def test_each_rule_catches_its_breach() -> None:
    """The checker fails on every kind of breach (a test that cannot fail proves
    nothing), and passes the same code where it belongs."""
    breaches = {
        "from agentos.api import deps": "domain imports a shell",
        "import agentos.cli.main": "domain imports a shell",
        "from sqlalchemy.dialects.postgresql import insert": "domain imports a driver",
        "import psycopg": "domain imports a driver",
        "import sqlite3": "domain imports a driver",
        "from sqlalchemy import text": "domain imports sqlalchemy.text",
        "x = store.dialect == 'sqlite'": "reads a dialect",
        "x = conn.dialect.name": "reads a dialect",
        "async def f(s):\n    async with s.driver() as db:\n        pass": "calls driver()",
        "async def f(c):\n    await c.exec_driver_sql('x')": "calls exec_driver_sql()",
        "Q = 'SELECT id FROM tasks'": "SQL text",
        "Q = 'UPDATE tasks SET status = 1'": "SQL text",
        "Q = 'INSERT OR IGNORE INTO t VALUES (1)'": "SQL text",
        "Q = 'LOCK TABLE users IN SHARE MODE'": "SQL text",
    }
    for source, what in breaches.items():
        assert any(what in v for v in _check("agentos.somewhere", source)), source
    assert _check("agentos.store.somewhere", "from agentos import queue")
    assert _check("agentos.store.somewhere", "from agentos.store import sql") == []
    assert _check("agentos.store.somewhere", "from ..queue import submit")
    assert _check("agentos.api.routes.somewhere", "from agentos.store import tables")
    assert _check("agentos.api.routes.somewhere", "from agentos import queue") == []
    assert _check("agentos.store.somewhere", "import sqlite3\nQ = 'SELECT a FROM b'") == []
    assert _check("agentos.server", "from agentos.api.app import create_app") == []
    # prose is no SQL, nor is a docstring that describes a statement
    assert _check("agentos.somewhere", "m = 'select the first task from the queue'") == []
    assert _check("agentos.somewhere", "def f():\n    '''SELECT a FROM b'''") == []


def test_a_sqlite_process_loads_no_postgresql_driver(tmp_path: Path) -> None:
    """A SQLite server or worker does not import psycopg (and its libpq): it cost a
    worker's start about a third (2f6f39a). A store module that needs psycopg imports it
    inside the PostgreSQL-only function."""
    code = ("import sys\n"
            "import importlib\n"
            "from agentos.cli.main import COMMANDS\n"
            "for module, _ in COMMANDS.values():  # the CLI loads only the one it runs\n"
            "    importlib.import_module(f'agentos.cli.{module}')\n"
            "import agentos.server, agentos.worker.loop\n"
            "from agentos.store import open_store\n"
            "open_store(sys.argv[1])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))\n")
    done = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path / 'a.db'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout
