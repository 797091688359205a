"""Workflow definitions: versions with the agents' lifecycle (``agentos.lifecycle``),
YAML import/export, and the version a run uses.

Importing a version identical to the stored one changes nothing (``unchanged``); a
draft may be replaced; a published version is immutable. Every document of an
import is validated (``spec``) and its references checked before anything is
written: each agent step's agent (and pinned version) and each sub-workflow must
exist (a sub-workflow may come in the same import).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, documents, events, registry, semver
from agentos.documents import Document
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.inputs import format_path
from agentos.lifecycle import UNCHANGED, Status, StoredVersion, is_mutable, transition, unchanged
from agentos.store import Store
from agentos.store import workflows as store_workflows
from agentos.store.columns import utcnow
from agentos.workflows import spec as spec_
from agentos.workflows.spec import WorkflowSpec

MAX_PAGE = 500
RUNNABLE = (Status.PUBLISHED.value,)  # the statuses a run may use
_PREFERENCE = {Status.PUBLISHED.value: 0, Status.DRAFT.value: 1, Status.DEPRECATED.value: 2}


class WorkflowVersion(StoredVersion):
    """One stored version of a workflow."""

    @property
    def spec(self) -> WorkflowSpec:
        return parsed(self.name, self.version, self.definition)

    def described(self) -> dict[str, Any]:
        d = self.definition
        return {"description": d.get("description"), "tags": d.get("tags", []),
                "steps": [s["id"] for s in d.get("steps", [])]}


def parsed(name: str, version: str, definition: dict[str, Any]) -> WorkflowSpec:
    """The definition as a model; published ones are immutable, so each is parsed once
    per process (a draft's text is part of the key)."""
    return _parse(name, version, events.dump_json(definition))


@lru_cache(maxsize=512)
def _parse(name: str, version: str, text: str) -> WorkflowSpec:
    return WorkflowSpec.model_validate_json(text)


# -------------------------------------------------------------------- writes


@dataclass(frozen=True)
class Saved:
    version: WorkflowVersion
    outcome: str  # created | replaced | unchanged


async def import_yaml(store: Store, text: str, *, publish: bool = False) -> list[Saved]:
    """Import every document of a YAML stream in one transaction: all or none."""
    docs = await asyncio.to_thread(documents.parse_yaml, text)
    return await _import(store, docs, publish)


async def create(store: Store, data: Any, *, publish: bool = False) -> Saved:
    """Store a definition that arrived as JSON."""
    [saved] = await _import(store, [Document(data)], publish)
    return saved


async def _import(store: Store, docs: list[Document], publish: bool) -> list[Saved]:
    specs: list[WorkflowSpec] = []
    all_errors: list[dict[str, Any]] = []
    for doc in docs:
        try:
            specs.append(spec_.validate(doc))
        except InvalidInput as exc:
            all_errors += _tagged(exc.details.get("errors", []), doc, len(docs))
    documents.raise_invalid(all_errors, "workflow definition")
    keys = [(s.name, s.version) for s in specs]
    if len(set(keys)) != len(keys):
        raise InvalidInput("the stream holds the same name and version twice",
                           code="duplicate_version")
    async with store.read() as conn:
        for doc, spec in zip(docs, specs, strict=True):
            problems = await _reference_errors(store, conn, doc, spec, {s.name for s in specs})
            all_errors += _tagged(problems, doc, len(docs))
    documents.raise_invalid(all_errors, "workflow definition")
    async with store.write() as conn:
        saved = [await _save(conn, s, publish) for s in specs]
        if all(s.outcome == UNCHANGED for s in saved):
            store.nothing_changed(conn)  # an identical re-import: no audit row
        else:
            audit.names([f"{s.name}@{s.version}" for s in specs])
        return saved


def _tagged(errors: list[dict[str, Any]], doc: Document, count: int) -> list[dict[str, Any]]:
    return [{**e, "document": doc.index} for e in errors] if count > 1 else errors


async def _reference_errors(store: Store, conn: AsyncConnection, doc: Document,
                            spec: WorkflowSpec, importing: set[str]) -> list[dict[str, Any]]:
    """Agents and sub-workflows the definition names that do not exist."""
    errors: list[dict[str, Any]] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        errors.append({"path": format_path(path), "message": message, "line": doc.line(path)})

    for i, step in enumerate(spec.steps):
        if step.type == "agent" and step.agent is not None:
            try:
                found = await registry.get(store, step.agent, step.version)
            except NotFound:
                where = "version" if step.version else "agent"
                what = f"{step.agent} {step.version}" if step.version else step.agent
                add(("steps", i, where), f"unknown agent {what}")
                continue
            if step.version and found.status is not Status.PUBLISHED:
                add(("steps", i, "version"),
                    f"agent {step.agent} {step.version} is {found.status.value}, not published")
        elif step.type == "workflow" and step.workflow is not None:
            if step.workflow in importing and not step.version:
                continue
            if step.version:
                row = await store_workflows.version(conn, step.workflow, step.version)
                if row is None and step.workflow not in importing:
                    add(("steps", i, "version"),
                        f"unknown workflow {step.workflow} {step.version}")
            elif not await store_workflows.versions(conn, step.workflow):
                add(("steps", i, "workflow"), f"unknown workflow {step.workflow}")
    return errors


async def _save(conn: AsyncConnection, spec: WorkflowSpec, publish: bool) -> Saved:
    document = spec.to_document()
    existing = await store_workflows.version(conn, spec.name, spec.version)
    status = Status.PUBLISHED if publish else Status.DRAFT
    if unchanged(spec.name, spec.version,
                 None if existing is None else (existing.status, existing.definition),
                 document, publish=publish, kind="workflow "):
        return Saved(WorkflowVersion.from_row(existing), UNCHANGED)
    values = {"definition": document, "description": spec.description,
              "status": status.value, "published_at": utcnow() if publish else None}
    if existing is None:
        await store_workflows.insert_version(conn, {
            "name": spec.name, "version": spec.version,
            "sort_key": semver.sort_key(spec.version), **values})
    else:
        await store_workflows.update_version(conn, spec.name, spec.version, values)
    row = await store_workflows.version(conn, spec.name, spec.version)
    return Saved(WorkflowVersion.from_row(row), "created" if existing is None else "replaced")


async def change_status(store: Store, name: str, version: str, action: str
                        ) -> WorkflowVersion:
    """Publish, deprecate or archive one version (see ``agentos.lifecycle``)."""
    async with store.write() as conn:
        current = await _load(conn, name, version)
        target = transition(current.status, action, f"workflow {name} {version}")
        values: dict[str, Any] = {"status": target.value}
        if target is Status.PUBLISHED and current.published_at is None:
            values["published_at"] = utcnow()
        await store_workflows.update_version(conn, name, version, values)
        return await _load(conn, name, version)


async def delete_draft(store: Store, name: str, version: str) -> None:
    async with store.write() as conn:
        current = await _load(conn, name, version)
        if not is_mutable(current.status):
            raise Conflict(f"workflow {name} {version} is {current.status.value}; only drafts "
                           "can be deleted", code="version_immutable",
                           details={"name": name, "version": version,
                                    "status": current.status.value})
        await store_workflows.delete_version(conn, name, version)


# --------------------------------------------------------------------- reads


async def _load(conn: AsyncConnection, name: str, version: str) -> WorkflowVersion:
    row = await store_workflows.version(conn, name, version)
    if row is None:
        if not await store_workflows.versions(conn, name):
            raise NotFound(f"no workflow named {name}", code="workflow_not_found",
                           details={"name": name})
        raise NotFound(f"workflow {name} has no version {version}", code="version_not_found",
                       details={"name": name, "version": version})
    return WorkflowVersion.from_row(row)


async def get(store: Store, name: str, version: str | None = None) -> WorkflowVersion:
    """One version, or the workflow's current one: its latest published, else its
    newest draft, deprecated, archived."""
    async with store.read() as conn:
        if version is not None:
            return await _load(conn, name, version)
        rows = await store_workflows.versions(conn, name)
    if not rows:
        raise NotFound(f"no workflow named {name}", code="workflow_not_found",
                       details={"name": name})
    return WorkflowVersion.from_row(_best(rows))


def _best(rows: Sequence[Any]) -> Any:
    """The current version among one workflow's rows (highest first)."""
    return min(rows, key=lambda r: _PREFERENCE.get(r.status, 3))


async def versions(store: Store, name: str) -> list[WorkflowVersion]:
    async with store.read() as conn:
        rows = await store_workflows.versions(conn, name)
    if not rows:
        raise NotFound(f"no workflow named {name}", code="workflow_not_found",
                       details={"name": name})
    return [WorkflowVersion.from_row(r) for r in rows]


async def search(store: Store, *, status: Status | None = None, after: str | None = None,
                 limit: int = 100) -> tuple[list[WorkflowVersion], str | None]:
    """One version per workflow (its current one, or its best of ``status``), by name."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    async with store.read() as conn:
        rows = await store_workflows.all_versions(
            conn, status=status.value if status else None, after=after)
    by_name: dict[str, list[Any]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    found = [WorkflowVersion.from_row(_best(group)) for group in by_name.values()]
    page = found[:limit]
    return page, (page[-1].name if len(found) > limit else None)


async def runnable(conn: AsyncConnection, name: str, version: str | None) -> WorkflowVersion:
    """The version a run of ``name`` uses: ``version`` (published), else the latest
    published one; 404/409 naming why not."""
    if version is None:
        row = await store_workflows.latest(conn, name, RUNNABLE)
        if row is None:
            if not await store_workflows.versions(conn, name):
                raise NotFound(f"no workflow named {name}", code="workflow_not_found",
                               details={"name": name})
            raise Conflict(f"workflow {name} has no published version",
                           code="workflow_not_runnable", details={"name": name})
        return WorkflowVersion.from_row(row)
    found = await _load(conn, name, version)
    if found.status.value not in RUNNABLE:
        raise Conflict(f"workflow {name} {version} is {found.status.value}; only a published "
                       "version runs", code="workflow_not_runnable",
                       details={"name": name, "version": version,
                                "status": found.status.value})
    return found


def to_yaml(version: WorkflowVersion) -> str:
    """The definition as YAML, fields in the order the schema declares them."""
    return yaml.safe_dump(version.spec.to_document(), sort_keys=False, allow_unicode=True)
