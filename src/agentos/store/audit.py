"""The audit log's storage: numbering and chaining a row under the ``audit_head`` row.

The chain's rule (``audit.link``: ``sha256(prev_hash ":" seq ":" body)``) is the
domain's; here is only how each backend applies it under the head row's lock, in the
caller's write transaction. PostgreSQL takes the number, computes the hash and inserts
the row in one statement (``audit_append``, of the ``audit_row`` CTEs), the head row
locked until commit; a hot write's own statement can carry those CTEs (``fragment``,
``OnDriver.fold``), so that write and its audit row are one round trip in autocommit.
SQLite's write transaction already holds the database's only write lock, so three
plain statements on the driver's text, which cost less than SQLAlchemy's statement
building would, and the hash is computed here with the domain's rule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import sql
from agentos.store.base import Fold, Foldable
from agentos.store.columns import json_dumps, stamp

S = TypeVar("S")  # a statement: its text, or its text and parameters' order

# (previous row's hash, this row's number) -> this row's hash
Chain = Callable[[str, int], str]


async def append(conn: AsyncConnection, at: datetime, row: dict[str, Any],
                 details: dict[str, Any], body: str, chain: Chain) -> int:
    """Number, chain and insert one audit row in the caller's write transaction;
    returns its number. ``row`` holds the plain columns (actor ... user_agent),
    ``body`` the hashed text of the row, ``chain`` the link rule for SQLite (the
    PostgreSQL statement applies the same rule to ``body`` itself)."""
    if conn.dialect.name == "postgresql":
        return int((await conn.exec_driver_sql(_PG_APPEND, _params(at, row, details, body))
                    ).scalar_one())
    details_text = json_dumps(details)  # as ``_params``
    seq, prev = tuple((await conn.exec_driver_sql(_SQLITE_TAKE_SEQ)).one())
    digest = chain(prev, seq)
    await conn.exec_driver_sql(_SQLITE_INSERT, (
        seq, stamp(at), row["actor"], row["actor_role"], row["action"], row["outcome"],
        row["resource_type"], row["resource_id"], details_text, row["ip"], row["user_agent"],
        prev, digest))
    await conn.exec_driver_sql(_SQLITE_MOVE_HEAD, (digest, prev))
    return int(seq)


# an entry as a driver block's last step writes it: at, row, details, body, chain
Pending = tuple[datetime, dict[str, Any], dict[str, Any], str, Chain]


class OnDriver(Foldable):
    """The request's audit row for a driver block (``Store.driver(hooked=True)``): its
    last step, once the block's write has named its resource, on the block's own
    connection; or, in a folding block (``Store.folding``), written by the block's one
    statement through its ``fragment``. ``take`` answers the entry then (None: nothing
    to append) and hands it over; ``give_back`` makes the entry taken last the
    request's again (the statement changed nothing, so it wrote no row)."""

    def __init__(self, take: Callable[[], Pending | None],
                 give_back: Callable[[], None]) -> None:
        self._take, self._give_back = take, give_back

    async def __call__(self, db: Any) -> None:
        if (pending := self._take()) is not None:
            await append_on_driver(db, *pending)

    def fold(self) -> dict[str, Any] | None:
        pending = self._take()
        return None if pending is None else _params(*pending[:4])

    def unfold(self) -> None:
        self._give_back()


def carried(fold: Fold | None, plain: S, audited: S, params: dict[str, Any]
            ) -> tuple[S, dict[str, Any]]:
    """A folding block's statement and parameters (``Store.folding``): ``audited``
    with the request's audit row's parameters where ``fold`` offers them, else
    ``plain``."""
    audit = fold() if fold is not None else None
    return (plain, params) if audit is None else (audited, {**params, **audit})


async def alone(db: Any, fold: Fold | None) -> None:
    """In a folding block whose write wrote nothing (an idempotent replay), the
    request's audit row as the block's one statement (``audit_append``), in autocommit:
    one round trip, not a transaction's three. Where the block is a transaction instead
    (``fold`` None), its end writes the row."""
    if fold is not None and (params := fold()) is not None:
        await db.execute(_PG_APPEND, params, prepare=True)


def fragment(written_by: str, *also: str) -> str:
    """The audit row's CTEs for a hot write's own statement on PostgreSQL (its
    ``/*audit*/`` blank; the parameters are ``OnDriver.fold``'s): the row is written
    when the statement's CTE ``written_by`` has one. That CTE, and the CTEs ``also``
    (the write's others that update or delete rows), are read whole first, so the head
    row is locked after the rows the write updates or deletes, as when the audit row is
    a transaction's last statement: no two writers each hold what the other waits for.
    (A CTE without RETURNING cannot be read: tasks_complete_one's ``ended`` inserts an
    execution record under the task row its ``done`` locked first.)"""
    first = " AND ".join(f"(SELECT count(*) FROM {name}) >= 0" for name in also)
    return ", " + sql.query("audit_row", "postgresql", audit_if=" AND ".join(
        filter(None, (first, f"(SELECT count(*) FROM {written_by}) > 0"))))


def _params(at: datetime, row: dict[str, Any], details: dict[str, Any], body: str
            ) -> dict[str, Any]:
    """The ``audit_row`` fragment's parameters. The stored details text reads back to
    the value hashed in ``body`` (NaN, which would not, is refused)."""
    return {"audit_at": at, "audit_body": body, "audit_details": json_dumps(details),
            **{f"audit_{column}": value for column, value in row.items()}}


async def append_on_driver(db: Any, at: datetime, row: dict[str, Any],
                           details: dict[str, Any], body: str, chain: Chain) -> int:
    """``append`` on the store's driver connection (``Store.driver``), inside its write
    transaction: sqlite3's or psycopg's, the same statements."""
    details_text = json_dumps(details)
    if isinstance(db, sqlite3.Connection):
        seq, prev = db.execute(_SQLITE_TAKE_SEQ).fetchone()
        digest = chain(prev, seq)
        db.execute(_SQLITE_INSERT, (
            seq, stamp(at), row["actor"], row["actor_role"], row["action"], row["outcome"],
            row["resource_type"], row["resource_id"], details_text, row["ip"],
            row["user_agent"], prev, digest))
        db.execute(_SQLITE_MOVE_HEAD, (digest, prev))
        return int(seq)
    found = await (await db.execute(_PG_APPEND, _params(at, row, details, body),
                                    prepare=True)).fetchone()
    return int(found[0])


_PG_APPEND = sql.query("audit_append", "postgresql", driver=True, audit_if="true")
_SQLITE_TAKE_SEQ = ("UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 "
                    "RETURNING last_seq, last_hash")
_SQLITE_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, actor_role, action, outcome, resource_type, "
    "resource_id, details, ip, user_agent, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQLITE_MOVE_HEAD = "UPDATE audit_head SET last_hash = ?, prev_hash = ? WHERE id = 1"
