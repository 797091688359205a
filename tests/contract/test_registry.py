"""The registry's guarantees, on SQLite and PostgreSQL."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentos import agent_spec, registry
from agentos.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from agentos.lifecycle import Status
from agentos.store import Store
from tests.snapshot import snapshot

EXAMPLE = (Path(__file__).parent.parent / "data" / "qa-manager.yaml").read_text()


def spec(name: str = "a", version: str = "1.0.0", **fields: Any) -> agent_spec.AgentSpec:
    return agent_spec.from_object({"name": name, "version": version,
                                   "handler": {"type": "python", "target": "m:f"}, **fields})


async def test_import_stores_a_draft_that_exports_back(store: Store) -> None:
    [version] = await registry.import_yaml(store, EXAMPLE)
    assert version.status is Status.DRAFT
    got = await registry.get(store, "qa-manager")
    assert yaml.safe_load(registry.to_yaml(got)) == yaml.safe_load(EXAMPLE)


async def test_published_versions_are_immutable(store: Store) -> None:
    await registry.import_yaml(store, EXAMPLE, publish=True)
    before = await snapshot(store)
    with pytest.raises(Conflict):
        await registry.import_yaml(store, EXAMPLE.replace("QA Manager", "Changed"))
    with pytest.raises(Conflict):
        await registry.create(store, spec("qa-manager", "1.0.0"))
    with pytest.raises(Conflict):
        await registry.delete_draft(store, "qa-manager", "1.0.0")
    with pytest.raises(Conflict):
        await registry.change_status(store, "qa-manager", "1.0.0", "publish")
    assert await snapshot(store) == before


async def test_drafts_can_be_replaced_and_deleted(store: Store) -> None:
    _, created = await registry.create(store, spec(description="one", tags=["x"]))
    assert created
    version, created = await registry.create(store, spec(description="two", tags=["y"]))
    assert not created and version.definition["description"] == "two"
    assert (await registry.search(store, registry.Query(tag="x")))[0] == []
    assert [a.name for a in (await registry.search(store, registry.Query(tag="y")))[0]] == ["a"]
    await registry.delete_draft(store, "a", "1.0.0")
    with pytest.raises(NotFound):
        await registry.get(store, "a")
    assert (await registry.search(store, registry.Query(tag="y")))[0] == []


async def test_latest_is_the_highest_published_version(store: Store) -> None:
    for v in ["1.2.0", "1.10.0", "1.9.0", "2.0.0-rc.1", "0.9.0"]:
        await registry.create(store, spec(version=v), publish=v in ("1.2.0", "1.9.0", "0.9.0"))
    await registry.create(store, spec(version="3.0.0"))  # a newer draft
    assert (await registry.get(store, "a")).version == "1.9.0"
    await registry.change_status(store, "a", "1.10.0", "publish")
    assert (await registry.get(store, "a")).version == "1.10.0"
    await registry.change_status(store, "a", "1.10.0", "deprecate")
    assert (await registry.get(store, "a")).version == "1.9.0"
    # precedence, not publication order: a published prerelease of 2.0.0 outranks 1.x
    await registry.change_status(store, "a", "2.0.0-rc.1", "publish")
    assert (await registry.get(store, "a")).version == "2.0.0-rc.1"
    assert [v.version for v in await registry.versions(store, "a")] == [
        "3.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0", "1.2.0", "0.9.0"]


async def test_without_published_versions_the_newest_draft_is_shown(store: Store) -> None:
    await registry.create(store, spec(version="0.1.0"))
    await registry.create(store, spec(version="0.2.0"))
    assert (await registry.get(store, "a")).version == "0.2.0"
    assert await registry.latest_published(store, "a") is None


async def test_lifecycle_to_archived(store: Store) -> None:
    await registry.create(store, spec())
    for action, status in [("publish", Status.PUBLISHED), ("deprecate", Status.DEPRECATED),
                           ("publish", Status.PUBLISHED), ("deprecate", Status.DEPRECATED),
                           ("archive", Status.ARCHIVED)]:
        assert (await registry.change_status(store, "a", "1.0.0", action)).status is status
    with pytest.raises(Conflict):
        await registry.change_status(store, "a", "1.0.0", "publish")


async def test_unknown_agents_and_versions(store: Store) -> None:
    with pytest.raises(NotFound) as info:
        await registry.get(store, "ghost")
    assert info.value.code == "agent_not_found"
    await registry.create(store, spec())
    with pytest.raises(NotFound) as info:
        await registry.change_status(store, "a", "9.9.9", "publish")
    assert info.value.code == "version_not_found"
    with pytest.raises(NotFound):
        await registry.versions(store, "ghost")


async def test_search(store: Store) -> None:
    await registry.import_yaml(store, EXAMPLE, publish=True)
    await registry.create(store, spec("billing", description="Sends invoices", role="Finance",
                                      tags=["finance"],
                                      capabilities=[{"name": "invoicing"}],
                                      triggers=[{"event": "invoice.*"}]), publish=True)
    await registry.create(store, spec("drafty", description="100% draft_agent"))

    async def names(**q: Any) -> list[str]:
        return [a.name for a in (await registry.search(store, registry.Query(**q)))[0]]

    assert await names() == ["billing", "drafty", "qa-manager"]
    assert await names(q="FLEET") == ["qa-manager"]
    assert await names(q="finance") == ["billing"]
    assert await names(q="100%") == ["drafty"]
    assert await names(q="t_a") == ["drafty"]  # LIKE wildcards are literal
    assert await names(q="%") == ["drafty"]
    assert await names(tag="qa") == ["qa-manager"]
    assert await names(capability="invoicing") == ["billing"]
    assert await names(status=Status.DRAFT) == ["drafty"]
    assert await names(status=Status.PUBLISHED) == ["billing", "qa-manager"]
    assert await names(event="alert.cpu") == ["qa-manager"]
    assert await names(event="invoice.paid") == ["billing"]
    assert await names(event="nothing.here") == []
    page, after = await registry.search(store, registry.Query(limit=2))
    assert [a.name for a in page] == ["billing", "drafty"] and after == "drafty"
    assert await names(after=after) == ["qa-manager"]


async def test_event_search_uses_only_the_latest_published_version(store: Store) -> None:
    await registry.create(store, spec(version="1.0.0", triggers=[{"event": "old.*"}]),
                          publish=True)
    await registry.create(store, spec(version="2.0.0", triggers=[{"event": "new.*"}]),
                          publish=True)
    await registry.create(store, spec(version="3.0.0", triggers=[{"event": "draft.*"}]))

    async def names(event: str) -> list[str]:
        return [a.name for a in (await registry.search(store, registry.Query(event=event)))[0]]

    assert await names("new.x") == ["a"]
    assert await names("old.x") == []
    assert await names("draft.x") == []


async def test_invalid_input_writes_nothing(store: Store) -> None:
    await registry.import_yaml(store, EXAMPLE)
    before = await snapshot(store)
    two_docs = EXAMPLE.replace("1.0.0", "2.0.0") + "---\nname: b\nversion: nope\n"
    with pytest.raises(ValidationFailed) as info:
        await registry.import_yaml(store, two_docs)
    assert {e["document"] for e in info.value.details["errors"]} == {1}
    with pytest.raises(InvalidInput):
        await registry.import_yaml(store, "- not\n- a mapping\n")
    with pytest.raises(InvalidInput):
        await registry.search(store, registry.Query(event="bad..type"))
    assert await snapshot(store) == before


async def test_concurrent_creates_of_one_version_leave_one_row(store: Store) -> None:
    results = await asyncio.gather(
        *(registry.create(store, spec(description=f"writer {i}"), publish=True) for i in range(8)),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert len(await registry.versions(store, "a")) == 1
