"""tasks: indexes for the lists' order within a status or an agent

A page of one status's or one agent's tasks (newest first in the dashboard and the
CLI) is read in ``seq`` order. With only ``(agent, status)`` SQLite read a rare
status's or agent's page by scanning the whole table backwards (a million tasks: 150
to 340 ms for the running ones, 200 ms for an agent with ten tasks); these are read
in order and stop after the page. Each costs a submit and each status change one more
B-tree entry (SQLite, batches of 1,000 and 100: 42 -> 48 us a task for its insert and
two status changes). Events get no such index for their source: an append is the
hottest write, and a rare source's page reads the log (a million events: 150-230 ms).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_status_seq", "tasks", ["status", "seq"])
    op.create_index("ix_tasks_agent_seq", "tasks", ["agent", "seq"])


def downgrade() -> None:
    op.drop_index("ix_tasks_agent_seq", table_name="tasks")
    op.drop_index("ix_tasks_status_seq", table_name="tasks")
