"""The agent registry (SPEC §2.1): versions of agent definitions, their lifecycle,
search, and YAML import/export.

Every function takes a ``Store``; validation happens before any write, so an
invalid document never touches the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import agent_spec, audit, cache, documents, patterns, semver
from agentos.agent_spec import AgentSpec
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.lifecycle import UNCHANGED as UNCHANGED  # the import result callers compare
from agentos.lifecycle import Status, StoredVersion, is_mutable, transition, unchanged
from agentos.store import Store
from agentos.store import routes as store_routes
from agentos.store.columns import utcnow
from agentos.store.tables import agent_capabilities, agent_tags, agent_triggers, agent_versions

av = agent_versions
MAX_PAGE = 500


class AgentVersion(StoredVersion):
    """One stored version of an agent."""

    @property
    def spec(self) -> AgentSpec:
        return AgentSpec.model_validate(self.definition)

    def described(self) -> dict[str, Any]:
        d = self.definition
        return {
            "display_name": d.get("display_name"),
            "description": d.get("description"),
            "role": d.get("role"),
            "owner": d.get("owner"),
            "tags": d.get("tags", []),
            "capabilities": [c["name"] for c in d.get("capabilities", [])],
            "triggers": [t["event"] for t in d.get("triggers", [])],
        }


_COLUMNS = (av.c.id, av.c.name, av.c.version, av.c.status, av.c.definition,
            av.c.created_at, av.c.updated_at, av.c.published_at, av.c.sort_key)

# "the" version of an agent: the latest published, else the newest draft, else
# the newest deprecated, else the newest archived
_PREFERENCE = case(
    {Status.PUBLISHED.value: 0, Status.DRAFT.value: 1, Status.DEPRECATED.value: 2},
    value=av.c.status,
    else_=3,
)


# built once: the registry GET is a hot path and building a select costs more
# than running it on SQLite
_CURRENT = (select(*_COLUMNS).where(av.c.name == bindparam("name"))
            .order_by(_PREFERENCE, av.c.sort_key.desc()).limit(1))


# ------------------------------------------------------------------ writes


async def create(
    store: Store, spec: AgentSpec, *, publish: bool = False
) -> tuple[AgentVersion, bool]:
    """Store ``spec`` as a draft (replacing a draft of the same version), publishing
    it too if asked. Returns the version and whether it was new."""
    async with store.write() as conn:
        await cache.changed(store, conn)
        audit.names([f"{spec.name}@{spec.version}"])
        saved = await _save(conn, spec, publish=publish)
        if publish:
            await store_routes.refresh_patterns(conn)
        return saved


async def import_yaml(store: Store, text: str, *, publish: bool = False) -> list[AgentVersion]:
    """Import every document of a YAML stream in one transaction: all or none."""
    return [version for version, _ in await import_results(store, text, publish=publish)]


async def import_results(store: Store, text: str, *, publish: bool = False
                         ) -> list[tuple[AgentVersion, str]]:
    """``import_yaml``, with what became of each version: created, updated (a draft
    replaced) or unchanged (identical to the one stored, which stays as it is; a stored
    version that cannot change and differs is a 409 naming the fields that differ)."""
    docs = await asyncio.to_thread(documents.parse_yaml, text)  # bounded, but not free
    specs = []
    all_errors: list[dict[str, Any]] = []
    for doc in docs:
        try:
            specs.append(agent_spec.validate(doc))
        except InvalidInput as exc:
            errors = exc.details.get("errors", [])
            if len(docs) > 1:
                errors = [{**e, "document": doc.index} for e in errors]
            all_errors.extend(errors)
    documents.raise_invalid(all_errors, "agent definition")
    keys = [(s.name, s.version) for s in specs]
    if len(set(keys)) != len(keys):
        raise InvalidInput("the stream holds the same name and version twice",
                           code="duplicate_version")
    async with store.write() as conn:
        results = [await _save_new(conn, s, publish) for s in specs]
        if all(result == UNCHANGED for _, result in results):
            store.nothing_changed(conn)  # no audit row, no cache to drop
        else:
            await cache.changed(store, conn)
            audit.names([f"{s.name}@{s.version}" for s in specs])
            if publish:  # once, after every row it writes (its lock is taken last)
                await store_routes.refresh_patterns(conn)
        return results


async def _save_new(conn: AsyncConnection, spec: AgentSpec, publish: bool
                    ) -> tuple[AgentVersion, str]:
    """``_save`` unless the stored version is the same (and, asked to publish, is
    published already: one that cannot change any more stays as it is)."""
    stored = (await conn.execute(select(av.c.status, av.c.definition).where(
        av.c.name == spec.name, av.c.version == spec.version))).first()
    if unchanged(spec.name, spec.version,
                 None if stored is None else (stored.status, stored.definition),
                 spec.to_document(), publish=publish):
        return await _load(conn, spec.name, spec.version), UNCHANGED
    version, created = await _save(conn, spec, publish=publish)
    return version, "created" if created else "updated"


async def _save(
    conn: AsyncConnection, spec: AgentSpec, *, publish: bool
) -> tuple[AgentVersion, bool]:
    existing = (await conn.execute(
        select(av.c.id, av.c.status).where(av.c.name == spec.name, av.c.version == spec.version)
    )).first()
    document = spec.to_document()
    values = {
        "definition": document,
        "display_name": spec.display_name,
        "description": spec.description,
        "role": spec.role,
        "owner": spec.owner,
        "status": Status.PUBLISHED.value if publish else Status.DRAFT.value,
        "published_at": utcnow() if publish else None,
        "updated_at": utcnow(),
    }
    if existing is None:
        version_id = (await conn.execute(
            insert(av).values(name=spec.name, version=spec.version,
                              sort_key=semver.sort_key(spec.version), **values)
            .returning(av.c.id)
        )).scalar_one()
    else:
        if not is_mutable(Status(existing.status)):
            raise Conflict(
                f"{spec.name} {spec.version} is {existing.status} and cannot change; "
                "publish a new version instead",
                code="version_immutable",
                details={"name": spec.name, "version": spec.version, "status": existing.status},
            )
        version_id = existing.id
        await conn.execute(update(av).where(av.c.id == version_id).values(**values))
        for side in (agent_tags, agent_capabilities, agent_triggers):
            await conn.execute(delete(side).where(side.c.agent_version_id == version_id))
    await _index(conn, version_id, spec)
    return await _load(conn, spec.name, spec.version), existing is None


async def _index(conn: AsyncConnection, version_id: int, spec: AgentSpec) -> None:
    """Fill the search tables for one version."""
    if spec.tags:
        await conn.execute(insert(agent_tags),
                           [{"agent_version_id": version_id, "tag": t} for t in spec.tags])
    if spec.capabilities:
        await conn.execute(insert(agent_capabilities), [
            {"agent_version_id": version_id, "name": c.name, "version": str(c.version),
             "enabled": c.enabled} for c in spec.capabilities])
    if spec.triggers:
        await conn.execute(insert(agent_triggers), [
            {"agent_version_id": version_id, "position": i, "event_glob": t.event,
             "priority": t.priority, "filter": t.filter, "capability": t.capability}
            for i, t in enumerate(spec.triggers)])


async def change_status(store: Store, name: str, version: str, action: str) -> AgentVersion:
    """Publish, deprecate or archive one version (see ``agentos.lifecycle``)."""
    async with store.write() as conn:
        await cache.changed(store, conn)
        current = await _load(conn, name, version)
        target = transition(current.status, action, f"{name} {version}")
        values: dict[str, Any] = {"status": target.value, "updated_at": utcnow()}
        if target is Status.PUBLISHED and current.published_at is None:
            values["published_at"] = utcnow()
        await conn.execute(update(av).where(av.c.name == name, av.c.version == version)
                           .values(**values))
        await store_routes.refresh_patterns(conn)
        return await _load(conn, name, version)


async def delete_draft(store: Store, name: str, version: str) -> None:
    async with store.write() as conn:
        await cache.changed(store, conn)
        current = await _load(conn, name, version)
        if not is_mutable(current.status):
            raise Conflict(f"{name} {version} is {current.status.value}; only drafts can be "
                           "deleted (deprecate or archive it instead)",
                           code="version_immutable",
                           details={"name": name, "version": version,
                                    "status": current.status.value})
        await conn.execute(delete(av).where(av.c.name == name, av.c.version == version))


# ------------------------------------------------------------------- reads


async def _load(conn: AsyncConnection, name: str, version: str) -> AgentVersion:
    row = (await conn.execute(
        select(*_COLUMNS).where(av.c.name == name, av.c.version == version))).first()
    if row is None:
        await _require_agent(conn, name)
        raise NotFound(f"agent {name} has no version {version}", code="version_not_found",
                       details={"name": name, "version": version})
    return AgentVersion.from_row(row)


async def _require_agent(conn: AsyncConnection, name: str) -> None:
    if not (await conn.execute(select(exists().where(av.c.name == name)))).scalar():
        raise NotFound(f"no agent named {name}", code="agent_not_found", details={"name": name})


async def get(store: Store, name: str, version: str | None = None) -> AgentVersion:
    """One version, or when ``version`` is None the agent's current one (from the
    process's cache of hot reads; every registry write empties it)."""
    return await cache.of(store).get("agent", f"{name}@{version or ''}",
                                     lambda: _get(store, name, version))


async def _get(store: Store, name: str, version: str | None) -> AgentVersion:
    async with store.read() as conn:
        if version is not None:
            return await _load(conn, name, version)
        row = (await conn.execute(_CURRENT, {"name": name})).first()
    if row is None:
        raise NotFound(f"no agent named {name}", code="agent_not_found", details={"name": name})
    return AgentVersion.from_row(row)


async def latest_published(store: Store, name: str) -> AgentVersion | None:
    """The highest published version (cached like ``get``)."""
    return await cache.of(store).get("agent_latest", name,
                                     lambda: _latest_published(store, name))


async def _latest_published(store: Store, name: str) -> AgentVersion | None:
    async with store.read() as conn:
        row = (await conn.execute(
            select(*_COLUMNS).where(av.c.name == name, av.c.status == Status.PUBLISHED.value)
            .order_by(av.c.sort_key.desc()).limit(1))).first()
    return AgentVersion.from_row(row) if row else None


async def names(store: Store) -> list[str]:
    """Every agent's name (any version, any status), in order."""
    async with store.read() as conn:
        rows = (await conn.execute(select(av.c.name).distinct().order_by(av.c.name))).all()
    return [str(r.name) for r in rows]


async def versions(store: Store, name: str) -> list[AgentVersion]:
    """Every version of an agent, highest precedence first (cached like ``get``)."""
    found = await cache.of(store).get("agent_versions", name, lambda: _versions(store, name))
    return list(found)


async def _versions(store: Store, name: str) -> list[AgentVersion]:
    async with store.read() as conn:
        rows = (await conn.execute(
            select(*_COLUMNS).where(av.c.name == name).order_by(av.c.sort_key.desc()))).all()
        if not rows:
            await _require_agent(conn, name)
    return [AgentVersion.from_row(r) for r in rows]


@dataclass(frozen=True)
class Query:
    """Registry search; every given filter must hold."""

    q: str | None = None  # text in name, display name, description or role
    tag: str | None = None
    capability: str | None = None
    status: Status | None = None
    event: str | None = None  # agents whose published triggers match this event type
    after: str | None = None  # page: names after this one
    limit: int = 100


async def search(store: Store, query: Query) -> tuple[list[AgentVersion], str | None]:
    """One version per agent (the current one, or the best one of ``status``), by
    name; returns the page and the cursor for the next one."""
    if query.event is not None:
        patterns.check_event_type(query.event)
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    stmt = select(*_COLUMNS)
    if query.status is not None:
        stmt = stmt.where(av.c.status == query.status.value)
    elif query.event is not None:
        stmt = stmt.where(av.c.status == Status.PUBLISHED.value)
    if query.q:
        text = query.q.lower()
        stmt = stmt.where(or_(*(
            func.lower(col).contains(text, autoescape=True)
            for col in (av.c.name, av.c.display_name, av.c.description, av.c.role))))
    if query.tag:
        stmt = stmt.where(exists().where(agent_tags.c.agent_version_id == av.c.id,
                                         agent_tags.c.tag == query.tag))
    if query.capability:
        stmt = stmt.where(exists().where(and_(
            agent_capabilities.c.agent_version_id == av.c.id,
            agent_capabilities.c.name == query.capability)))
    if query.after:
        stmt = stmt.where(av.c.name > query.after)
    stmt = stmt.order_by(av.c.name, _PREFERENCE, av.c.sort_key.desc())
    async with store.read() as conn:
        rows = (await conn.execute(stmt)).all()
    best: dict[str, Any] = {}
    for row in rows:
        best.setdefault(row.name, row)  # rows come best-first within a name
    found = [AgentVersion.from_row(r) for r in best.values()]
    if query.event is not None:
        # routing uses the latest published version only
        latest = await _latest_published_of(store, [a.name for a in found])
        found = [a for a in found if latest.get(a.name) == a.version
                 and any(patterns.matches(t["event"], query.event)
                         for t in a.definition.get("triggers", []))]
    page = found[: query.limit]
    next_after = page[-1].name if len(found) > query.limit else None
    return page, next_after


async def _latest_published_of(store: Store, names: Sequence[str]) -> dict[str, str]:
    if not names:
        return {}
    async with store.read() as conn:
        rows = (await conn.execute(
            select(av.c.name, av.c.version).where(
                av.c.name.in_(names), av.c.status == Status.PUBLISHED.value)
            .order_by(av.c.name, av.c.sort_key.desc()))).all()
    latest: dict[str, str] = {}
    for row in rows:
        latest.setdefault(row.name, row.version)
    return latest


# ---------------------------------------------------------------- export


def to_yaml(version: AgentVersion) -> str:
    """The definition as YAML, fields in the order the schema declares them."""
    ordered = version.spec.to_document()
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)
