"""agent versions: the starter agents' handlers moved to agentos.worker.starters

The starter agents' python handlers now live in the worker package; published
versions keep their definitions, so their handler targets are renamed here (only
the target: ``agentos.starters.X`` becomes ``agentos.worker.starters.X``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD = "agentos.starters."
NEW = "agentos.worker.starters."


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)


def _rename(old: str, new: str) -> None:
    rest = len(old) + 1  # SQL's substr counts from 1
    if op.get_bind().dialect.name == "postgresql":
        target = "definition->'handler'->>'target'"
        op.execute(f"UPDATE agent_versions SET definition = jsonb_set(definition, "
                   f"'{{handler,target}}', to_jsonb('{new}' || substr({target}, {rest}))) "
                   f"WHERE {target} LIKE '{old}%'")
    else:
        target = "json_extract(definition, '$.handler.target')"
        op.execute(f"UPDATE agent_versions SET definition = json_set(definition, "
                   f"'$.handler.target', '{new}' || substr({target}, {rest})) "
                   f"WHERE {target} LIKE '{old}%'")
