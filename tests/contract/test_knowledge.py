"""The knowledge base on both backends: writes, ranked search, paging, hybrid ranking,
and bad input that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from agentos import knowledge
from agentos.embeddings import Embedder
from agentos.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from agentos.knowledge import Config, Draft, Query
from agentos.store import Store
from agentos.store.tables import events, knowledge_documents, knowledge_tags
from tests.fake_llm import FakeLlm

TEXT = Config()


@pytest.fixture
def fake() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


async def put(store: Store, ns: str, key: str, content: str, config: Config = TEXT,
              **fields: Any) -> tuple[dict[str, Any], bool]:
    return await knowledge.put(store, ns, key, Draft(content, **fields), by="user:t",
                               config=config)


async def counts(store: Store) -> tuple[int, int, int]:
    async with store.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                      for t in (knowledge_documents, knowledge_tags, events)])  # type: ignore[return-value]


async def event_types(store: Store) -> list[str]:
    async with store.read() as conn:
        return list((await conn.execute(select(events.c.type).order_by(events.c.seq))).scalars())


async def test_put_creates_then_replaces_keeping_its_author(store: Store) -> None:
    doc, created = await put(store, "runbooks", "disk-full", "Free space on the device.",
                             title="Disk full", tags=("ops", "disk"), metadata={"v": 1})
    assert created and doc["created_by"] == doc["updated_by"] == "user:t"
    doc, created = await knowledge.put(store, "runbooks", "disk-full",
                                       Draft("Delete old logs.", "Disk full", ("ops",)),
                                       by="agent:janitor", config=TEXT)
    assert not created
    assert (doc["created_by"], doc["updated_by"]) == ("user:t", "agent:janitor")
    got = await knowledge.get(store, "runbooks", "disk-full")
    assert got["content"] == "Delete old logs." and got["tags"] == ["ops"]
    assert got["embedded"] is False
    assert await counts(store) == (1, 1, 2)
    assert await event_types(store) == ["knowledge.put", "knowledge.put"]


async def test_delete_removes_the_document_and_logs_it(store: Store) -> None:
    await put(store, "n", "k", "text", tags=("a",))
    await knowledge.delete(store, "n", "k", by="user:t")
    with pytest.raises(NotFound):
        await knowledge.get(store, "n", "k")
    with pytest.raises(NotFound):
        await knowledge.delete(store, "n", "k", by="user:t")
    assert await counts(store) == (0, 0, 2)
    assert await event_types(store) == ["knowledge.put", "knowledge.deleted"]


async def test_search_ranks_title_matches_first_and_marks_the_words(store: Store) -> None:
    await put(store, "kb", "body", "The deploy pipeline runs after every merge to main.",
              title="Pipelines")
    await put(store, "kb", "title", "How we ship.", title="Deploying safely")
    await put(store, "kb", "other", "Nothing about it here.", title="Lunch menu")
    page = await knowledge.search(store, Query(q="deploy"), TEXT)
    assert page.mode == "text"
    assert [d["key"] for d in page.documents] == ["title", "body"]  # stemmed: deploying
    assert page.documents[0]["score"] > page.documents[1]["score"]
    assert "<mark>deploy</mark>" in page.documents[1]["snippet"].lower()
    assert page.next_cursor is None


async def test_filters_by_namespace_and_every_tag(store: Store) -> None:
    await put(store, "a", "1", "alpha beta", tags=("x", "y"))
    await put(store, "a", "2", "alpha", tags=("x",))
    await put(store, "b", "3", "alpha", tags=("x", "y"))
    keys = [d["key"] for d in (await knowledge.search(
        store, Query(q="alpha", namespace="a", tags=("x", "y")), TEXT)).documents]
    assert keys == ["1"]
    listing = await knowledge.search(store, Query(tags=("x",)), TEXT)
    assert listing.mode == "list"
    assert [(d["namespace"], d["key"]) for d in listing.documents] == [
        ("a", "1"), ("a", "2"), ("b", "3")]


@pytest.mark.parametrize("q", [None, "common"])
async def test_pages_never_repeat_or_skip(store: Store, q: str | None) -> None:
    for n in range(23):  # equal and unequal scores alike
        await put(store, "p", f"doc-{n:02d}", "common " * (1 + n % 3) + f"word{n}")
    seen: list[str] = []
    cursor = None
    while True:
        page = await knowledge.search(store, Query(q=q, cursor=cursor, limit=5), TEXT)
        seen += [d["key"] for d in page.documents]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == [f"doc-{n:02d}" for n in range(23)]
    assert len(seen) == 23


@pytest.mark.parametrize("q", ['deploy AND (', '"deploy', "kb:deploy", "-deploy", "(((",
                               "NOT deploy", "deploy*)", "'; DROP TABLE x; --", "ü&|!"])
async def test_a_query_the_engine_cannot_parse_is_searched_as_words(store: Store,
                                                                    q: str) -> None:
    await put(store, "kb", "d", "How to deploy the service.")
    page = await knowledge.search(store, Query(q=q), TEXT)
    assert page.mode == "text"
    if "deploy" in q:
        assert [d["key"] for d in page.documents] in (["d"], [])  # "-deploy" may exclude it


async def test_bad_input_is_refused_and_writes_nothing(store: Store) -> None:
    await put(store, "ok", "k", "x")
    before = await counts(store)
    bad: list[tuple[str, str, Draft, type[Exception]]] = [
        ("a/b", "k", Draft("x"), InvalidInput),
        ("", "k", Draft("x"), InvalidInput),
        ("n" * 65, "k", Draft("x"), InvalidInput),
        ("ns\x00", "k", Draft("x"), InvalidInput),
        ("ns", "a/b", Draft("x"), InvalidInput),
        ("ns", "a\x00b", Draft("x"), InvalidInput),
        ("ns", "k" * 256, Draft("x"), InvalidInput),
        ("ns", "..", Draft("x"), InvalidInput),
        ("ns", "k", Draft("nul \x00 inside"), InvalidInput),
        ("ns", "k", Draft("x", metadata={"a": "b\x00"}), InvalidInput),
        ("ns", "k", Draft("x", title="two\nlines"), InvalidInput),
        ("ns", "k", Draft("x", tags=("has space",)), InvalidInput),
        ("ns", "k", Draft("x", tags=tuple(f"t{n}" for n in range(40))), InvalidInput),
        ("ns", "k", Draft("y" * 2000), PayloadTooLarge),
    ]
    small = Config(max_bytes=1024)
    for ns, key, draft, error in bad:
        with pytest.raises(error):
            await knowledge.put(store, ns, key, draft, by="user:t", config=small)
    for query in (Query(q="x\x00"), Query(q="x" * 1001), Query(limit=0), Query(limit=101),
                  Query(namespace="a/b"), Query(tags=("no way",)), Query(cursor="garbage"),
                  Query(q="x", cursor=knowledge._encode("list", ["a", "b"]))):
        with pytest.raises(InvalidInput):
            await knowledge.search(store, query, TEXT)
    assert await counts(store) == before


async def test_hybrid_search_fuses_text_and_vector_rankings(store: Store,
                                                            fake: FakeLlm) -> None:
    config = Config(embedder=Embedder(fake.base_url, "fake-embed"))
    await put(store, "kb", "garage", "Automobile repair manual", config, title="Garage")
    await put(store, "kb", "both", "Car and automobile care", config, title="Car care")
    await put(store, "kb", "pets", "Dog grooming tips", config, title="Pets")
    assert (await knowledge.get(store, "kb", "garage"))["embedded"] is True
    page = await knowledge.search(store, Query(q="car"), config)
    assert page.mode == "hybrid"
    ranked = [(d["key"], d["matched"]) for d in page.documents]
    assert ranked[0] == ("both", ["text", "vector"])  # in both rankings: first
    assert ("garage", ["vector"]) in ranked  # no word in common: found by meaning only
    assert (await knowledge.search(store, Query(q="car"), TEXT)).documents[0]["key"] == "both"
    # pages of one walk the fused list
    keys, cursor = [], None
    while True:
        got = await knowledge.search(store, Query(q="car", cursor=cursor, limit=1), config)
        keys += [d["key"] for d in got.documents]
        if (cursor := got.next_cursor) is None:
            break
    assert keys == [key for key, _ in ranked]


async def test_vectors_of_another_model_are_not_compared(store: Store, fake: FakeLlm) -> None:
    await put(store, "kb", "old", "automobile", Config(embedder=Embedder(fake.base_url, "m1")))
    page = await knowledge.search(store, Query(q="car"),
                                  Config(embedder=Embedder(fake.base_url, "m2")))
    assert page.documents == []


async def test_a_vector_search_compares_the_most_recent_documents_up_to_its_bound(
        store: Store, fake: FakeLlm) -> None:
    embed = Embedder(fake.base_url, "fake-embed")
    for n, text in enumerate(("automobile one", "automobile two", "dog", "hound", "cat")):
        await put(store, "kb", f"d{n}", text, Config(embedder=embed))
    # a bound of 3: the three most recently added are compared, and the page says so
    page = await knowledge.search(store, Query(q="vehicle"),
                                  Config(embedder=embed, max_compared=3))
    assert {d["key"] for d in page.documents if "vector" in d["matched"]} <= {"d2", "d3", "d4"}
    assert page.warning is not None and "the 3 most recently added" in page.warning
    # within the bound: the nearest of all, best first, and no warning
    page = await knowledge.search(store, Query(q="vehicle"),
                                  Config(embedder=embed, max_compared=5))
    assert [d["key"] for d in page.documents][:2] == ["d0", "d1"] and page.warning is None
    assert page.documents[0]["matched"] == ["vector"]  # no word in common


async def test_a_failing_embeddings_api_writes_nothing_and_search_falls_back(
        store: Store, fake: FakeLlm) -> None:
    await put(store, "kb", "d", "car park", TEXT)
    broken = Config(embedder=Embedder(fake.base_url, "status-503"))
    before = await counts(store)
    with pytest.raises(Unavailable) as refused:
        await put(store, "kb", "e", "anything", broken)
    assert refused.value.code == "embeddings_unavailable"
    assert await counts(store) == before
    page = await knowledge.search(store, Query(q="car"), broken)
    assert page.mode == "text" and page.warning and "503" in page.warning
    assert [d["key"] for d in page.documents] == ["d"]
    unreachable = Config(embedder=Embedder("http://127.0.0.1:9", "m", timeout=2.0))
    assert (await knowledge.search(store, Query(q="car"), unreachable)).mode == "text"


def test_fuse_scores_and_orders() -> None:
    fused = knowledge.fuse([[1, 2, 3], [3, 4]], k=60)
    assert [i for i, _ in fused] == [3, 1, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)
    assert knowledge.fuse([]) == []


async def test_handlers_read_and_write_through_the_context(store: Store) -> None:
    from tests.contract.test_handler_kinds import agent, run, submit

    await agent(store, "librarian", {"type": "python", "target": "tests.handlers:librarian"})
    await agent(store, "sync-librarian",
                {"type": "python", "target": "tests.handlers:sync_librarian"})
    ok = await submit(store, "librarian", key="k1", text="Rotate the keys monthly", q="rotate")
    sync_ok = await submit(store, "sync-librarian", key="k2", text="Backups nightly",
                           q="backups")
    bad = await submit(store, "sync-librarian", key="a/b", text="x", q="x")
    done = {t.id: t for t in await run(store, ok, sync_ok, bad)}
    assert done[ok].output == {"found": ["k1"], "by": "agent:librarian", "missing": None}
    assert done[sync_ok].output == {"found": ["k2"], "gone": True}
    assert done[bad].status.value == "failed"
    assert "may not contain '/'" in done[bad].error["message"]
    assert done[bad].attempt == 1  # not retried: the input is what is wrong
