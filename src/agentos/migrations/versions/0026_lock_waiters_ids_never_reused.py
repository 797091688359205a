"""lock_waiters: on SQLite an entry's id is never reused (AUTOINCREMENT)

A grant's notification names the queue entry it served, and a waiter whose entry it
names returns the grant without reading the lock. SQLite gave a new entry the id of
the newest one deleted (its largest rowid plus one), so a notification of an earlier
grant could name a later waiter's entry: that waiter returned another's grant, with
its token. PostgreSQL's ids come from a sequence and are never reused: unchanged.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the table made again with AUTOINCREMENT, its rows, indexes and constraints
    # copied; SQLite's sequence starts at the largest id it holds
    _recreate(autoincrement=True)


def downgrade() -> None:
    _recreate(autoincrement=False)


def _recreate(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("lock_waiters", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass
