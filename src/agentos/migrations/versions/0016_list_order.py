"""tasks and events: indexes for the lists' order within a status, an agent, a source

A page of one status's or one agent's tasks, or of one source's events (newest first
in the dashboard and the CLI), is read in ``seq`` order. With only ``(agent, status)``
SQLite read a rare status's or agent's page by scanning the whole table backwards (a
million tasks: 150 to 340 ms for the running ones, 200 ms for an agent with ten
tasks), and both backends read every event for a rare source (a million: 150-540 ms);
these are read in order and stop after the page. The price is one more B-tree entry
for each submit, status change and append (SQLite, batches: 42 -> 48 us a task for its
insert and two status changes, 26 -> 30 us an event).

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
    op.create_index("ix_events_source_seq", "events", ["source", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_source_seq", table_name="events")
    op.drop_index("ix_tasks_agent_seq", table_name="tasks")
    op.drop_index("ix_tasks_status_seq", table_name="tasks")
