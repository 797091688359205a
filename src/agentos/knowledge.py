"""The knowledge base (SPEC §2.10): documents agents and people write, read and search.

A document is (namespace, key) → title, content, tags, metadata, who wrote it
and when; writing one replaces it. Every change appends ``knowledge.put`` or
``knowledge.deleted`` in its own transaction. Search ranks by full text (BM25 on
SQLite, ts_rank on PostgreSQL, both with highlighted snippets); when an
embeddings API is configured each document also carries a vector, and a search
fuses the text ranking with the vector ranking by reciprocal rank fusion
(``fuse``). Results come in pages with an opaque cursor.

Bad input is refused before anything is written: names with ``/`` or control
characters, anything over its size limit, NUL anywhere (PostgreSQL cannot store it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentos import events
from agentos.config import Settings
from agentos.embeddings import Embedder
from agentos.errors import AgentOSError, InvalidInput, NotFound, PayloadTooLarge
from agentos.store import Store
from agentos.store import knowledge as store_knowledge
from agentos.store.knowledge import Filters

NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_KEY_CHARS = 255
MAX_TITLE_CHARS = 500
MAX_TAGS = 32
MAX_QUERY_CHARS = 1000
MAX_PAGE = 100
DEFAULT_PAGE = 20
CANDIDATES = 100  # documents each ranking contributes to a hybrid search
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al.): 1 / (K + rank)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Config:
    """What a process's knowledge base is allowed and able to do."""

    max_bytes: int = 512 * 1024  # title + content + metadata, bytes of UTF-8
    embedder: Embedder | None = None  # None: text search only
    # documents a vector search compares at most (the most recently added): each is a
    # dot product in Python on SQLite, so a search's time is bounded whatever the size
    max_compared: int = store_knowledge.MAX_COMPARED

    @classmethod
    def from_settings(cls, settings: Settings) -> Config:
        return cls(settings.knowledge_max_bytes, Embedder.from_settings(settings))


@dataclass(frozen=True)
class Draft:
    """A document as written."""

    content: str
    title: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------ validation


def check_namespace(namespace: str) -> None:
    if not NAMESPACE.match(namespace):
        raise InvalidInput(f"namespace {namespace[:80]!r} must be 1-64 letters, digits or "
                           "_ . : - (starting with a letter or digit)", code="bad_namespace")


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise InvalidInput(f"a key must be 1-{MAX_KEY_CHARS} characters", code="bad_key",
                           details={"length": len(key)})
    if "/" in key or _CONTROL.search(key) or key in (".", ".."):
        raise InvalidInput(f"key {key[:80]!r} may not contain '/' or control characters "
                           "(NUL included), nor be '.' or '..'", code="bad_key")


def check_tag(tag: str) -> None:
    if not TAG.match(tag):
        raise InvalidInput(f"tag {tag[:80]!r} must be 1-64 letters, digits or _ . : - "
                           "(starting with a letter or digit)", code="bad_tag")


def check_draft(draft: Draft, max_bytes: int) -> str:
    """Refuse a bad document; returns its metadata as JSON (whose size counted)."""
    if len(draft.title) > MAX_TITLE_CHARS or _CONTROL.search(draft.title):
        raise InvalidInput(f"a title is at most {MAX_TITLE_CHARS} characters, on one line",
                           code="bad_title")
    if "\x00" in draft.content:
        raise InvalidInput("the content may not contain NUL characters", code="bad_content")
    if len(draft.tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", code="bad_tag")
    for tag in draft.tags:
        check_tag(tag)
    metadata = events.dump_json(draft.metadata)
    if "\\u0000" in metadata:
        raise InvalidInput("the metadata may not contain NUL characters", code="bad_metadata")
    size = len(draft.title.encode()) + len(draft.content.encode()) + len(metadata.encode())
    if size > max_bytes:
        raise PayloadTooLarge(f"the document is {size} bytes, over the limit of {max_bytes} "
                              "(AGENTOS_KNOWLEDGE_MAX_BYTES)", code="document_too_large",
                              details={"size": size, "max_bytes": max_bytes})
    return metadata


# ------------------------------------------------------------------ writes


async def put(store: Store, namespace: str, key: str, draft: Draft, *, by: str,
              config: Config) -> tuple[dict[str, Any], bool]:
    """Create or replace a document; returns it (without content) and whether it is new.

    With an embedder the document is embedded first, outside the transaction; if
    the embeddings API fails, nothing is written (503 ``embeddings_unavailable``).
    """
    check_namespace(namespace)
    check_key(key)
    check_draft(draft, config.max_bytes)
    tags = tuple(dict.fromkeys(draft.tags))  # each once, in the order given
    vector = None
    if config.embedder is not None:
        [vector] = await config.embedder.embed([f"{draft.title}\n\n{draft.content}"])
    async with store.write() as conn:
        doc, created = await store_knowledge.upsert(conn, {
            "namespace": namespace, "key": key, "title": draft.title,
            "content": draft.content, "metadata": draft.metadata, "by": by,
            "embedding_model": config.embedder.model if vector is not None and config.embedder
            else None}, tags, vector)
        await events.append_in(store, conn, [events.Draft(
            type="knowledge.put", source=by, subject=f"{namespace}/{key}",
            payload={"namespace": namespace, "key": key, "title": draft.title,
                     "tags": list(tags), "created": created})])
    return public(doc), created


async def delete(store: Store, namespace: str, key: str, *, by: str) -> None:
    check_namespace(namespace)
    check_key(key)
    async with store.write() as conn:
        if not await store_knowledge.remove(conn, namespace, key):
            raise _missing(namespace, key)
        await events.append_in(store, conn, [events.Draft(
            type="knowledge.deleted", source=by, subject=f"{namespace}/{key}",
            payload={"namespace": namespace, "key": key})])


# ------------------------------------------------------------------- reads


async def get(store: Store, namespace: str, key: str) -> dict[str, Any]:
    """One document with its content."""
    check_namespace(namespace)
    check_key(key)
    async with store.read() as conn:
        doc = await store_knowledge.fetch(conn, namespace, key)
    if doc is None:
        raise _missing(namespace, key)
    return public(doc)


@dataclass(frozen=True)
class Query:
    """A listing (no ``q``) or a ranked search; every filter given must hold."""

    q: str | None = None
    namespace: str | None = None
    tags: tuple[str, ...] = ()
    cursor: str | None = None
    limit: int = DEFAULT_PAGE


@dataclass(frozen=True)
class Page:
    documents: list[dict[str, Any]]
    next_cursor: str | None
    mode: str  # list | text | hybrid
    warning: str | None = None  # e.g. why a hybrid search fell back to text


async def search(store: Store, query: Query, config: Config) -> Page:
    """A page of documents: by (namespace, key) without ``q``; with it, ranked by
    full text, or by text and vector fused when an embedder is configured (should
    the embeddings API fail, by text alone, saying so in ``warning``)."""
    _check_query(query)
    filters = Filters(query.namespace, tuple(dict.fromkeys(query.tags)))
    q = (query.q or "").strip()
    if not q:
        after = _cursor(query.cursor, "list")
        async with store.read() as conn:
            rows = await store_knowledge.listing(
                conn, filters, (after[0], after[1]) if after else None, query.limit + 1)
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return Page([public(r) for r in page],
                    _encode("list", [page[-1]["namespace"], page[-1]["key"]]) if more else None,
                    "list")
    warning = None
    if config.embedder is not None and (query.cursor is None or _mode(query.cursor) == "hybrid"):
        try:
            [vector] = await config.embedder.embed([q])
        except AgentOSError as exc:
            warning = f"vector search unavailable, text only: {exc.message}"
        else:
            return await _hybrid(store, q, vector, config, filters, query)
    after = _cursor(query.cursor, "text")
    async with store.read() as conn:
        rows = await store_knowledge.text_search(
            conn, q, filters, (float(after[0]), int(after[1])) if after else None,
            query.limit + 1)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return Page([public(r, matched=["text"]) for r in page],
                _encode("text", [page[-1]["score"], page[-1]["id"]]) if more else None,
                "text", warning)


async def _hybrid(store: Store, q: str, vector: list[float], config: Config,
                  filters: Filters, query: Query) -> Page:
    assert config.embedder is not None
    model = config.embedder.model
    position = _cursor(query.cursor, "hybrid")
    offset = int(position[0]) if position else 0
    async with store.read() as conn:
        by_text = await store_knowledge.text_search(conn, q, filters, None, CANDIDATES)
        nearest = await store_knowledge.vector_search(conn, vector, model, filters,
                                                      CANDIDATES, config.max_compared)
    by_vector = nearest.rows
    rows = {r["id"]: r for r in by_vector}
    rows.update({r["id"]: r for r in by_text})  # a text match's snippet marks the words
    texts, vectors = {r["id"] for r in by_text}, {r["id"] for r in by_vector}
    fused = fuse([[r["id"] for r in by_text], [r["id"] for r in by_vector]])
    page = fused[offset: offset + query.limit]
    documents = [{**public(rows[i], matched=[m for m, ids in (("text", texts),
                                                              ("vector", vectors)) if i in ids]),
                  "score": round(score, 6)} for i, score in page]
    more = offset + query.limit < len(fused)
    warning = None
    if nearest.partial:
        warning = (f"vector search compared the {nearest.compared:,} most recently added "
                   "documents only: narrow it with a namespace or tags")
    return Page(documents, _encode("hybrid", [offset + query.limit]) if more else None,
                "hybrid", warning)


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each item scores the sum over the rankings that hold
    it of ``1 / (k + rank)`` (rank from 1); best first, ties in first-seen order."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def _check_query(query: Query) -> None:
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    if query.namespace is not None:
        check_namespace(query.namespace)
    for tag in query.tags:
        check_tag(tag)
    if query.q is not None and (len(query.q) > MAX_QUERY_CHARS or "\x00" in query.q):
        raise InvalidInput(f"a query is at most {MAX_QUERY_CHARS} characters, without NUL",
                           code="bad_query")


# ----------------------------------------------------------------- cursors


def _encode(mode: str, position: list[Any]) -> str:
    raw = json.dumps({"m": mode, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, list[Any]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        mode, position = data["m"], data["p"]
        if not isinstance(mode, str) or not isinstance(position, list):
            raise TypeError
        return mode, position
    except (binascii.Error, ValueError, LookupError, TypeError):
        raise InvalidInput("the cursor is not one this API gave out", code="bad_cursor") from None


def _mode(cursor: str) -> str:
    return _decode(cursor)[0]


def _cursor(cursor: str | None, mode: str) -> list[Any] | None:
    """The position a cursor of ``mode`` holds (None: the first page)."""
    if cursor is None:
        return None
    found, position = _decode(cursor)
    shapes: dict[str, tuple[type | tuple[type, ...], ...]] = {
        "list": (str, str), "text": ((int, float), int), "hybrid": (int,)}
    shape = shapes[mode]
    if found != mode or len(position) != len(shape) or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v, kind in zip(position, shape,
                                                                                strict=True)):
        raise InvalidInput(f"the cursor belongs to another kind of search than this {mode} "
                           "one", code="bad_cursor")
    return position


# ------------------------------------------------------------------ output


def public(row: dict[str, Any], matched: list[str] | None = None) -> dict[str, Any]:
    """A document row as the API and handlers see it."""
    out: dict[str, Any] = {
        "namespace": row["namespace"], "key": row["key"], "title": row["title"],
        "tags": list(row["tags"]), "metadata": row["metadata"],
        "created_by": row["created_by"], "updated_by": row["updated_by"],
        "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
    }
    if "content" in row:
        out["content"] = row["content"]
        out["embedded"] = row.get("embedding_model") is not None
    if "score" in row:
        out["score"] = row["score"]
        out["snippet"] = row["snippet"]
    if matched is not None:
        out["matched"] = matched
    return out


def _missing(namespace: str, key: str) -> NotFound:
    return NotFound(f"no document {key!r} in namespace {namespace!r}",
                    code="document_not_found", details={"namespace": namespace, "key": key})
