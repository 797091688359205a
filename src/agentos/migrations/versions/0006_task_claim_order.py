"""tasks: claim indexes in claim order (priority descending, then seq)

The claim reads pending tasks ``ORDER BY priority DESC, seq``; the index of 0004,
``(agent, priority, seq)``, made both backends sort every pending task on each claim
(all of them for a worker serving every agent). These two are read in order and stop
after the first few rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PENDING: dict[str, Any] = {"sqlite_where": sa.text("status = 'pending'"),
                           "postgresql_where": sa.text("status = 'pending'")}


def upgrade() -> None:
    op.drop_index("ix_tasks_agent_priority_seq", table_name="tasks")
    op.create_index("ix_tasks_claim_order", "tasks", [sa.text("priority DESC"), "seq"],
                    **PENDING)
    op.create_index("ix_tasks_agent_claim_order", "tasks",
                    ["agent", sa.text("priority DESC"), "seq"], **PENDING)


def downgrade() -> None:
    op.drop_index("ix_tasks_agent_claim_order", table_name="tasks")
    op.drop_index("ix_tasks_claim_order", table_name="tasks")
    op.create_index("ix_tasks_agent_priority_seq", "tasks", ["agent", "priority", "seq"],
                    **PENDING)
