"""tasks: the running attempt lives on the task row; its execution record is written
when it ends

A claim used to insert a ``running`` row into ``task_attempts`` and the attempt's end
to update it: two writes (and a foreign-key check) per attempt on the queue's hot
path. Now a claim stamps ``tasks.started_at`` (the worker and lease were there
already) and the end inserts the whole record at once. Running attempts move from
``task_attempts`` to their tasks' rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("started_at", UTCDateTime))
    op.execute("UPDATE tasks SET started_at = (SELECT a.started_at FROM task_attempts a "
               "WHERE a.task_id = tasks.id AND a.number = tasks.attempt) "
               "WHERE status = 'running'")
    op.execute("DELETE FROM task_attempts WHERE outcome = 'running'")


def downgrade() -> None:
    op.execute("INSERT INTO task_attempts (task_id, number, worker_id, outcome, started_at) "
               "SELECT id, attempt, coalesce(worker_id, ''), 'running', "
               "coalesce(started_at, updated_at) FROM tasks WHERE status = 'running'")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("started_at")
