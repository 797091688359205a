"""Driver errors as domain errors: one table per backend, and nothing of the driver's
text in what a client sees (it is logged, with the request's id).

    409 integrity_conflict     a constraint refused the change
    413 payload_too_large      a value is over the database's own limit
    422 invalid_input          a value the database cannot store (caught at the edge
                               first; this is the backstop)
    503 database_busy          locked by another writer, a deadlock, a timeout: retry
    503 database_read_only     the database (or its file, or its disk) takes no writes
    503 disk_full              no space left for the change
    503 database_unavailable   unreachable, its file removed or replaced, broken
    500 database_error         anything else: a bug (the client sees only ``internal``)

SQLite errors are told by their extended result code (``sqlite_errorname``),
PostgreSQL's by SQLSTATE; this module imports neither driver.
"""

from __future__ import annotations

import logging
from typing import Any

from agentos.errors import AgentOSError, Conflict, PayloadTooLarge, Unavailable, ValidationFailed

log = logging.getLogger("agentos.store")

BUSY = "database_busy"
READ_ONLY = "database_read_only"
DISK_FULL = "disk_full"
UNAVAILABLE = "database_unavailable"

_MESSAGES = {
    BUSY: "the database is busy (locked by another writer); try again",
    READ_ONLY: "the database is read-only: it takes no changes now",
    DISK_FULL: "the database's disk is full: it takes no changes now",
    UNAVAILABLE: "the database is unavailable",
}

# SQLite: the primary result code (the part of the extended name before a second "_")
_SQLITE = {
    "SQLITE_BUSY": BUSY, "SQLITE_LOCKED": BUSY, "SQLITE_PROTOCOL": BUSY,
    "SQLITE_READONLY": READ_ONLY, "SQLITE_FULL": DISK_FULL, "SQLITE_IOERR": UNAVAILABLE,
    "SQLITE_CANTOPEN": UNAVAILABLE, "SQLITE_NOTADB": UNAVAILABLE,
    "SQLITE_CORRUPT": UNAVAILABLE, "SQLITE_PERM": READ_ONLY, "SQLITE_AUTH": UNAVAILABLE,
}
# the file under a connection was moved or deleted: it is not merely read-only
_SQLITE_MOVED = {"SQLITE_READONLY_DBMOVED", "SQLITE_READONLY_DIRECTORY"}

# PostgreSQL: SQLSTATE, then its class (the first two characters)
_PG_STATE = {
    "25006": READ_ONLY,  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "53100": DISK_FULL,
    "40001": BUSY, "40P01": BUSY,  # serialization failure, deadlock
    "55P03": BUSY, "57014": BUSY,  # lock not available, statement timeout / cancelled
    "57P01": UNAVAILABLE, "57P02": UNAVAILABLE, "57P03": UNAVAILABLE,  # shutdown, starting
    "42P01": UNAVAILABLE, "3D000": UNAVAILABLE,  # no such table (schema), no such database
    "54000": "too_big",  # program_limit_exceeded (e.g. an index row too large)
}
_PG_CLASS = {"08": UNAVAILABLE, "53": UNAVAILABLE, "58": UNAVAILABLE, "XX": UNAVAILABLE,
             "23": "conflict", "22": "invalid"}


# no SQLSTATE: the connection failed, was lost, or was dropped mid-transaction
_LOST = ("OperationalError", "InterfaceError", "PendingRollbackError")


def from_sqlite(exc: BaseException) -> AgentOSError:
    """A ``sqlite3`` error (or SQLAlchemy's wrapper of one) as a domain error."""
    orig = getattr(exc, "orig", None) or exc
    name = str(getattr(orig, "sqlite_errorname", "") or "")
    primary = "_".join(name.split("_")[:2])
    text = str(orig)
    if name in _SQLITE_MOVED:
        kind = UNAVAILABLE
    elif primary in _SQLITE:
        kind = _SQLITE[primary]
    elif type(orig).__name__ == "IntegrityError" or primary == "SQLITE_CONSTRAINT":
        kind = "conflict"
    elif primary == "SQLITE_TOOBIG":
        kind = "too_big"
    elif "locked" in text:
        kind = BUSY
    elif type(orig).__name__ == "PendingRollbackError" or (
            type(orig).__name__ == "ProgrammingError" and "closed" in text):
        kind = UNAVAILABLE  # the connection went away under us
    elif "no such table" in text:
        kind = UNAVAILABLE  # not an AgentOS database (any more)
    else:
        kind = ""
    return _domain(kind, name or type(orig).__name__, text, orig)


def from_postgres(exc: BaseException) -> AgentOSError:
    """A ``psycopg`` error (or SQLAlchemy's wrapper of one) as a domain error."""
    orig = getattr(exc, "orig", None) or exc
    state = str(getattr(orig, "sqlstate", "") or "")
    kind = _PG_STATE.get(state) or _PG_CLASS.get(state[:2], "")
    if not kind and type(orig).__name__ in _LOST:
        kind = UNAVAILABLE  # no SQLSTATE: the connection failed or was lost
    elif not kind and type(orig).__name__ == "DataError":
        kind = "invalid"  # refused by psycopg itself (a NUL in a string: PostgreSQL has none)
    return _domain(kind, state or type(orig).__name__, str(orig), orig)


def _domain(kind: str, name: str, text: str, orig: Any) -> AgentOSError:
    first_line = text.strip().splitlines()[0] if text.strip() else name
    extra = {"action": "database_error", "driver_error": name, "code": kind or "unknown"}
    if kind in (BUSY, "conflict", "invalid", "too_big"):
        log.info("database refused: %s", first_line, extra=extra)
    else:
        log.warning("database error: %s", first_line, extra=extra)
    if kind in _MESSAGES:
        return Unavailable(_MESSAGES[kind], code=kind)
    if kind == "conflict":
        return Conflict("the change conflicts with existing data", code="integrity_conflict")
    if kind == "invalid":
        return ValidationFailed("a value cannot be stored by the database",
                                code="invalid_input", details={"errors": []})
    if kind == "too_big":
        return PayloadTooLarge("a value is over the database's size limit",
                               code="payload_too_large")
    return AgentOSError("database error", code="database_error")


def file_gone(path: str, why: str, *, first: bool) -> Unavailable:
    """The SQLite file under a running store was removed or replaced: say so in the log
    (the ``first`` time), and refuse."""
    if first:
        log.error("the database file %s was %s under this process: it refuses changes "
                  "until it is restarted (writes now would be lost with the old file)",
                  path, why, extra={"action": "database_file_gone"})
    return Unavailable(f"{_MESSAGES[UNAVAILABLE]}: its file was {why}", code=UNAVAILABLE)

