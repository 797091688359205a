"""locks: a flag on the lock row says a waiter may be queued

A release used to read the wait queue to learn whether to grant the lock to a
waiter, inside a transaction of several statements. The fast release is one
statement that frees the lock only when nobody waits; on PostgreSQL its read of
the queue would use the statement's snapshot, which can miss a waiter that
queued (holding the lock row) just before. A flag on the lock row itself is
re-checked on the row's newest version: a waiter sets it when it joins the
queue, and a change that frees the lock sets it to whether waiters remain.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("queued", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.execute("UPDATE locks SET queued = EXISTS (SELECT 1 FROM lock_waiters w "
               "WHERE w.resource = locks.resource)")


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("queued")
