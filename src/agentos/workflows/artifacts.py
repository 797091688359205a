"""Artifacts: named results a run's steps keep (``ctx.artifact(name, data)``), JSON or
bytes up to ``AGENTOS_ARTIFACT_MAX_BYTES``; storing a name again replaces it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentos import events
from agentos.errors import InvalidInput, NotFound, PayloadTooLarge
from agentos.events import Draft
from agentos.store import Store
from agentos.store import workflows as store_workflows

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str  # json | bytes
    value: Any  # the JSON value, or the bytes
    size: int
    step: str | None
    task_id: str | None


async def put(store: Store, task_id: str, name: str, data: Any, max_bytes: int) -> dict[str, Any]:
    """Store ``data`` as artifact ``name`` of the run the task belongs to."""
    if not NAME.match(name):
        raise InvalidInput(f"artifact name {name[:80]!r} must be 1-255 letters, digits or "
                           "'_.:-'", code="bad_artifact_name")
    if isinstance(data, bytes | bytearray | memoryview):
        kind, value, blob = "bytes", None, bytes(data)
        size = len(blob)
    else:
        kind, value, blob = "json", data, None
        size = len(events.dump_json(data).encode())
    if size > max_bytes:
        raise PayloadTooLarge(f"artifact {name} is {size} bytes; at most {max_bytes}",
                              code="artifact_too_large",
                              details={"size": size, "max_bytes": max_bytes})
    async with store.write() as conn:
        link = await store_workflows.run_of_task(conn, task_id)
        if link is None:
            raise InvalidInput(f"task {task_id} is no step of a workflow run: artifacts "
                               "belong to runs", code="not_in_a_run")
        run = await store_workflows.get_run(conn, link.run_id)
        assert run is not None  # a link's run is there (foreign key)
        await store_workflows.put_artifact(conn, {
            "run_id": link.run_id, "name": name, "step": link.step, "task_id": task_id,
            "kind": kind, "value": value, "data": blob, "size": size})
        await events.append_in(store, conn, [Draft(
            "workflow.artifact.stored", "workflows",
            {"run_id": link.run_id, "step": link.step, "name": name, "kind": kind,
             "size": size}, correlation_id=run.correlation_id, causation_id=task_id,
            run_id=link.run_id)])
    return {"run_id": link.run_id, "name": name, "kind": kind, "size": size}


async def listing(store: Store, run_id: str) -> list[dict[str, Any]]:
    async with store.read() as conn:
        if await store_workflows.get_run(conn, run_id) is None:
            raise NotFound(f"no workflow run {run_id}", code="run_not_found")
        rows = await store_workflows.artifacts_of(conn, run_id)
    return [{"name": r.name, "step": r.step, "task_id": r.task_id, "kind": r.kind,
             "size": r.size, "created_at": r.created_at.isoformat()} for r in rows]


async def get(store: Store, run_id: str, name: str) -> Artifact:
    async with store.read() as conn:
        row = await store_workflows.artifact(conn, run_id, name)
        if row is None:
            if await store_workflows.get_run(conn, run_id) is None:
                raise NotFound(f"no workflow run {run_id}", code="run_not_found")
            raise NotFound(f"run {run_id} has no artifact {name!r}", code="artifact_not_found")
    return Artifact(row.name, row.kind, row.value if row.kind == "json" else row.data,
                    row.size, row.step, row.task_id)
