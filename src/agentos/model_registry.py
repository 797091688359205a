"""The model registry (SPEC §2.10): ML models by name and version, and which one serves.

    training ──deploy──▶ deployed ──archive──▶ archived
        └────────────archive──────────────────▲

A version is registered in ``training``. Deploying it makes it the one an agent's
``model_ref: NAME`` resolves to; under the default policy (``replace``) the version
deployed before is archived in the same transaction, so at most one is deployed per
name; with ``AGENTOS_MODEL_DEPLOY_POLICY=many`` several may be, and the name
resolves to the one deployed last. An archived version is never deployed again.
Every change is audited (its route's rule) and appends ``model.registered``,
``model.deployed`` or ``model.archived`` in its own transaction. ``model_ref:
NAME@VERSION`` pins a version (one in training too, to try it; never an archived one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from agentos import audit, cache, events
from agentos.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from agentos.store import Store
from agentos.store import models as store_models

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$")  # type, framework
REF = re.compile(r"^([a-z][a-z0-9_.-]{0,62})(?:@([A-Za-z0-9][A-Za-z0-9_.+-]{0,63}))?$")
MAX_JSON_BYTES = 64 * 1024  # metrics, config: each
MAX_DESCRIPTION = 2000
MAX_URI = 2048
MAX_PAGE = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Policy = Literal["replace", "many"]


class Status(StrEnum):
    TRAINING = "training"  # registered: trained or evaluated; may be pinned, not deployed
    DEPLOYED = "deployed"  # deploy: what ``model_ref: NAME`` resolves to
    ARCHIVED = "archived"  # archive, or replaced by a deploy: kept for history only


# (status, action) -> the status after it; None: refused. Every pair is here.
TRANSITIONS: dict[tuple[Status, str], Status | None] = {
    (Status.TRAINING, "deploy"): Status.DEPLOYED,
    (Status.TRAINING, "archive"): Status.ARCHIVED,
    (Status.DEPLOYED, "deploy"): Status.DEPLOYED,  # already: nothing changes
    (Status.DEPLOYED, "archive"): Status.ARCHIVED,
    (Status.ARCHIVED, "deploy"): None,  # retired for good: register a new version
    (Status.ARCHIVED, "archive"): Status.ARCHIVED,  # already: nothing changes
}
ACTIONS = ("deploy", "archive")


def transition(current: Status, action: str, what: str) -> Status:
    """The status after ``action``, or ``Conflict`` when it is refused."""
    target = TRANSITIONS[(current, action)]
    if target is None:
        raise Conflict(f"cannot {action} {what}: it is {current.value}; register a new "
                       "version instead", code="invalid_transition",
                       details={"status": current.value, "action": action})
    return target


@dataclass(frozen=True)
class ModelIn:
    """A version to register."""

    name: str
    version: str
    type: str
    framework: str | None = None
    description: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    artifact_uri: str | None = None


def check(model: ModelIn) -> None:
    """Refuse a bad registration, naming the field."""
    if not NAME.match(model.name):
        raise InvalidInput(f"model name {model.name[:80]!r} must match {NAME.pattern}",
                           code="bad_name")
    if not VERSION.match(model.version):
        raise InvalidInput(f"version {model.version[:80]!r} must match {VERSION.pattern}",
                           code="bad_version")
    for label, value in (("type", model.type), ("framework", model.framework)):
        if value is not None and not LABEL.match(value):
            raise InvalidInput(f"{label} {value[:80]!r} must match {LABEL.pattern}",
                               code=f"bad_{label}")
    if model.description is not None and len(model.description) > MAX_DESCRIPTION:
        raise InvalidInput(f"a description is at most {MAX_DESCRIPTION} characters",
                           code="bad_description")
    if model.artifact_uri is not None and (
            not 1 <= len(model.artifact_uri) <= MAX_URI or _CONTROL.search(model.artifact_uri)):
        raise InvalidInput(f"artifact_uri must be 1-{MAX_URI} characters on one line",
                           code="bad_artifact_uri")
    for label, data in (("metrics", model.metrics), ("config", model.config)):
        size = len(events.dump_json(data).encode())
        if size > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"{label} is {size} bytes of JSON, over {MAX_JSON_BYTES}",
                                  code=f"{label}_too_large")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@VERSION`` as (name, version or None)."""
    match = REF.match(ref)
    if match is None:
        raise InvalidInput(f"model_ref {ref[:80]!r} must be NAME or NAME@VERSION",
                           code="bad_model_ref")
    return match.group(1), match.group(2)


# ------------------------------------------------------------------ writes


async def register(store: Store, model: ModelIn, *, by: str) -> dict[str, Any]:
    """Register a version in ``training``; 409 when that version exists."""
    check(model)
    async with store.write() as conn:
        row = await store_models.insert(conn, {
            "name": model.name, "version": model.version, "type": model.type,
            "framework": model.framework, "description": model.description,
            "metrics": model.metrics, "config": model.config,
            "artifact_uri": model.artifact_uri, "status": Status.TRAINING.value,
            "created_by": by})
        if row is None:
            raise Conflict(f"model {model.name} {model.version} is registered already",
                           code="model_exists",
                           details={"name": model.name, "version": model.version})
        await events.append_in(store, conn, [_event("model.registered", row, by)])
        audit.names([f"{model.name}@{model.version}"])
    return public(row)


async def change(store: Store, name: str, version: str, action: str, *, by: str,
                 policy: Policy = "replace") -> dict[str, Any]:
    """Deploy or archive one version (``TRANSITIONS``); returns it. Deploying under
    the ``replace`` policy archives the version deployed before."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}", code="bad_action")
    async with store.write() as conn:
        # the model's rows, locked: a concurrent deploy of another version waits here
        # and then sees this one deployed, so two are never left deployed
        rows = await store_models.versions_of(conn, name, lock=True)
        target = next((r for r in rows if r["version"] == version), None)
        if target is None:
            raise _missing(name, version, known=bool(rows))
        current = Status(target["status"])
        after = transition(current, action, f"model {name} {version}")
        if after is current:
            return public(target)  # nothing to change, nothing to record
        await cache.changed(store, conn)
        drafts = []
        if after is Status.DEPLOYED and policy == "replace":
            replaced = [r for r in rows if r["status"] == Status.DEPLOYED.value]
            if replaced:
                await store_models.set_status(conn, [r["id"] for r in replaced],
                                              Status.ARCHIVED.value)
                drafts += [_event("model.archived", {**r, "status": "archived"}, by,
                                  replaced_by=version) for r in replaced]
        await store_models.set_status(conn, [target["id"]], after.value)
        row = await store_models.fetch(conn, name, version)
        assert row is not None
        drafts.append(_event(f"model.{after.value}", row, by))
        await events.append_in(store, conn, drafts)
    return public(row)


def _event(type: str, row: dict[str, Any], by: str, **extra: Any) -> events.Draft:
    return events.Draft(type=type, source=by, subject=f"{row['name']}@{row['version']}",
                        payload={"name": row["name"], "version": row["version"],
                                 "status": row["status"], "type": row["type"], **extra})


# ------------------------------------------------------------------- reads


async def get(store: Store, name: str, version: str) -> dict[str, Any]:
    async with store.read() as conn:
        row = await store_models.fetch(conn, name, version)
        if row is None:
            known = bool(await store_models.versions_of(conn, name))
    if row is None:
        raise _missing(name, version, known)
    return public(row)


async def versions(store: Store, name: str) -> dict[str, Any]:
    """A model: its versions (newest first) and the deployed ones."""
    async with store.read() as conn:
        rows = await store_models.versions_of(conn, name)
    if not rows:
        raise NotFound(f"no model named {name}", code="model_not_found",
                       details={"name": name})
    found = [public(r) for r in rows]
    return {"name": name, "deployed": [v["version"] for v in found if v["status"] == "deployed"],
            "versions": found}


@dataclass(frozen=True)
class Query:
    name: str | None = None
    status: Status | None = None
    type: str | None = None
    after: int | None = None  # the cursor: a version's ``id``
    limit: int = 100


async def search(store: Store, query: Query) -> tuple[list[dict[str, Any]], int | None]:
    """Versions in registration order; returns the page and the cursor of the next."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    async with store.read() as conn:
        rows = await store_models.listing(
            conn, name=query.name, status=query.status.value if query.status else None,
            type=query.type, after=query.after, limit=query.limit + 1)
    page = rows[: query.limit]
    return [public(r) for r in page], (page[-1]["id"] if len(rows) > query.limit else None)


async def resolve(store: Store, ref: str) -> dict[str, Any]:
    """What an agent's ``model_ref`` names now: ``NAME`` the version deployed (last),
    ``NAME@VERSION`` that version unless archived. Served from the process's cache,
    which every status change empties."""
    return await cache.of(store).get("model", ref, lambda: _resolve(store, ref))


async def _resolve(store: Store, ref: str) -> dict[str, Any]:
    name, version = parse_ref(ref)
    if version is not None:
        found = await get(store, name, version)
        if found["status"] == Status.ARCHIVED.value:
            raise Conflict(f"model {name} {version} is archived", code="model_archived",
                           details={"name": name, "version": version})
        return found
    async with store.read() as conn:
        row = await store_models.deployed(conn, name)
        known = row is not None or bool(await store_models.versions_of(conn, name))
    if row is None:
        if not known:
            raise NotFound(f"no model named {name}", code="model_not_found",
                           details={"name": name})
        raise NotFound(f"model {name} has no deployed version", code="model_not_deployed",
                       details={"name": name})
    return public(row)


def public(row: dict[str, Any]) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at is not None else None

    return {"id": row["id"], "name": row["name"], "version": row["version"],
            "type": row["type"], "framework": row["framework"],
            "description": row["description"], "metrics": row["metrics"],
            "config": row["config"], "artifact_uri": row["artifact_uri"],
            "status": row["status"], "created_by": row["created_by"],
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
            "deployed_at": iso(row["deployed_at"]), "archived_at": iso(row["archived_at"])}


def _missing(name: str, version: str, known: bool) -> NotFound:
    if not known:
        return NotFound(f"no model named {name}", code="model_not_found",
                        details={"name": name})
    return NotFound(f"model {name} has no version {version}", code="model_version_not_found",
                    details={"name": name, "version": version})
