"""events: on PostgreSQL, numbered from a sequence without a lock between appenders

Appenders used to take numbers under the ``event_log_head`` row lock, held to
commit, so every append in the database waited for the one before to commit
(and its disk flush): workers' round trips took turns. Now they take numbers
from ``events_seq`` and mark themselves in flight with an advisory lock; readers
stop below the lowest mark (``events.horizon``). The head row stays as the lock
that serializes appends with dedup keys. SQLite keeps its head row (one writer).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE events_seq AS bigint START 1")
    op.execute("SELECT setval('events_seq', greatest(last_seq, 1), last_seq > 0) "
               "FROM event_log_head WHERE id = 1")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("UPDATE event_log_head SET last_seq = (SELECT CASE WHEN is_called "
               "THEN last_value ELSE 0 END FROM events_seq) WHERE id = 1")
    op.execute("DROP SEQUENCE events_seq")
