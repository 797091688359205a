"""The model registry on both backends: register, deploy (one deployed per name, also
under concurrent deploys), archive, refusals that write nothing, events, resolution."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from agentos import model_registry
from agentos.errors import Conflict, NotFound
from agentos.model_registry import ModelIn
from agentos.store import Store, open_store
from agentos.store.tables import events, models

BY = "user:t"


async def register(store: Store, name: str, version: str, **fields: object) -> dict:
    return await model_registry.register(store, ModelIn(name, version, "classification",
                                                        **fields), by=BY)  # type: ignore[arg-type]


async def logged(store: Store) -> list[tuple[str, str | None]]:
    async with store.read() as conn:
        rows = (await conn.execute(select(events.c.type, events.c.subject)
                                   .order_by(events.c.seq))).all()
    return [(r.type, r.subject) for r in rows]


async def statuses(store: Store, name: str) -> dict[str, str]:
    async with store.read() as conn:
        rows = (await conn.execute(select(models.c.version, models.c.status)
                                   .where(models.c.name == name))).all()
    return {r.version: r.status for r in rows}


async def test_register_deploy_replace_archive(store: Store) -> None:
    one = await register(store, "churn", "1", framework="sklearn", metrics={"auc": 0.81},
                         artifact_uri="s3://models/churn/1")
    assert (one["status"], one["created_by"], one["metrics"]) == ("training", BY, {"auc": 0.81})
    await register(store, "churn", "2", metrics={"auc": 0.86})
    deployed = await model_registry.change(store, "churn", "1", "deploy", by=BY)
    assert deployed["status"] == "deployed" and deployed["deployed_at"]
    assert (await model_registry.resolve(store, "churn"))["version"] == "1"
    # deploying 2 archives 1, in the same transaction
    await model_registry.change(store, "churn", "2", "deploy", by=BY)
    assert await statuses(store, "churn") == {"1": "archived", "2": "deployed"}
    assert (await model_registry.resolve(store, "churn"))["version"] == "2"
    assert (await model_registry.versions(store, "churn"))["deployed"] == ["2"]
    # deploying again changes nothing and records nothing
    before = await logged(store)
    await model_registry.change(store, "churn", "2", "deploy", by=BY)
    assert await logged(store) == before
    assert before == [("model.registered", "churn@1"), ("model.registered", "churn@2"),
                      ("model.deployed", "churn@1"), ("model.archived", "churn@1"),
                      ("model.deployed", "churn@2")]
    await model_registry.change(store, "churn", "2", "archive", by=BY)
    with pytest.raises(NotFound) as none:
        await model_registry.resolve(store, "churn")
    assert none.value.code == "model_not_deployed"


async def test_refusals_write_nothing(store: Store) -> None:
    await register(store, "m", "1")
    await model_registry.change(store, "m", "1", "archive", by=BY)
    before = (await logged(store), await statuses(store, "m"))
    with pytest.raises(Conflict) as archived:
        await model_registry.change(store, "m", "1", "deploy", by=BY)
    assert archived.value.code == "invalid_transition"
    with pytest.raises(Conflict) as taken:
        await register(store, "m", "1")
    assert taken.value.code == "model_exists"
    for name, version, code in (("m", "9", "model_version_not_found"),
                                ("ghost", "1", "model_not_found")):
        with pytest.raises(NotFound) as missing:
            await model_registry.change(store, name, version, "deploy", by=BY)
        assert missing.value.code == code
    assert (await logged(store), await statuses(store, "m")) == before
    with pytest.raises(Conflict) as pinned:
        await model_registry.resolve(store, "m@1")
    assert pinned.value.code == "model_archived"


async def test_concurrent_deploys_leave_one_deployed(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(4)]
    try:
        for n in range(8):
            await register(stores[0], "race", str(n))
        await asyncio.gather(*(model_registry.change(stores[n % 4], "race", str(n), "deploy",
                                                     by=BY) for n in range(8)))
        found = await statuses(stores[0], "race")
        assert list(found.values()).count("deployed") == 1, found
        assert list(found.values()).count("archived") == 7
    finally:
        for s in stores:
            await s.close()


async def test_policy_many_keeps_several_deployed(store: Store) -> None:
    for version in ("a", "b"):
        await register(store, "ensemble", version)
        await model_registry.change(store, "ensemble", version, "deploy", by=BY,
                                    policy="many")
    assert await statuses(store, "ensemble") == {"a": "deployed", "b": "deployed"}
    assert (await model_registry.resolve(store, "ensemble"))["version"] == "b"  # the last


async def test_listing_pages_and_filters(store: Store) -> None:
    for n in range(5):
        await register(store, f"m{n % 2}", str(n))
    page, after = await model_registry.search(store, model_registry.Query(limit=2))
    rest, end = await model_registry.search(store, model_registry.Query(after=after, limit=10))
    assert [m["version"] for m in page + rest] == ["0", "1", "2", "3", "4"] and end is None
    only, _ = await model_registry.search(store, model_registry.Query(name="m1"))
    assert [m["version"] for m in only] == ["1", "3"]


async def test_a_worker_resolves_model_ref_into_ctx_model(store: Store) -> None:
    from tests.contract.test_handler_kinds import agent, run, submit

    await register(store, "scorer", "1", config={"threshold": 0.5})
    await model_registry.change(store, "scorer", "1", "deploy", by=BY)
    await agent(store, "uses-model", {"type": "python", "target": "tests.handlers:modelled"},
                model_ref="scorer")
    await agent(store, "pinned", {"type": "python", "target": "tests.handlers:modelled"},
                model_ref="scorer@2")
    first = await submit(store, "uses-model")
    missing = await submit(store, "pinned")
    done = {t.id: t for t in await run(store, first, missing)}
    assert done[first].output == {"model": "scorer", "version": "1",
                                      "config": {"threshold": 0.5}}
    assert done[missing].status.value == "failed" and done[missing].attempt == 1
    assert "no version 2" in done[missing].error["message"]
    # a deploy elsewhere reaches the next attempt (the cache forgets at the commit)
    await register(store, "scorer", "2", config={"threshold": 0.7})
    await model_registry.change(store, "scorer", "2", "deploy", by=BY)
    second = await submit(store, "uses-model")
    [after] = await run(store, second)
    assert after.output["version"] == "2"
