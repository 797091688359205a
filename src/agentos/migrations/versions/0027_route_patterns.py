"""route_patterns: the event types published triggers name; an append queues an event
for routing only when one of them may match its type

Before, every appended event was queued (route_queue) and the router took each off
the queue, matched or not. The table is filled from the versions published now; the
events already queued stay queued and are routed as before.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store import routes
from agentos.store.columns import binary_string

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_patterns",
        sa.Column("type_like", binary_string(512), nullable=False),
        sa.PrimaryKeyConstraint("type_like", name=op.f("pk_route_patterns")),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    globs = bind.execute(routes.published_globs()).scalars().all()
    for statement, rows in routes.pattern_rewrite(globs):
        bind.execute(statement, rows or None)


def downgrade() -> None:
    op.drop_table("route_patterns")
