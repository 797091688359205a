"""Knowledge documents: upsert, read, delete, full-text and vector search.

Every difference between the backends' knowledge base is here. SQLite ranks with
FTS5's BM25 (the title weighing ``TITLE_WEIGHT`` times the content) and cuts
snippets with ``snippet()``; PostgreSQL ranks with ``ts_rank`` over the generated
tsvector column (title weighted A, content B) and cuts them with ``ts_headline``.
Queries use each engine's syntax (FTS5 on SQLite, ``websearch_to_tsquery`` on
PostgreSQL, which never refuses one); a query FTS5 cannot parse is run again as
its plain words, any of them matching (BM25 still puts those with more first).

Vectors are unit length, so their dot product is their cosine. Neither pgvector
(not packaged for this platform's PostgreSQL) nor sqlite-vec (this Python's
sqlite3 cannot load extensions) is used: PostgreSQL computes the dot product in
SQL over ``real[]`` (in the server: the event loop waits for nothing), SQLite in a
thread beside the loop, reading the candidates' vectors and keeping the best in a
heap of ``limit``. Both compare the query with each candidate document, exact and
linear in their number, so one search compares at most ``MAX_COMPARED`` of them: the
most recently added (the caller says when more were eligible).
"""

from __future__ import annotations

import heapq
import operator
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    REAL,
    and_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.errors import PayloadTooLarge
from agentos.store.columns import upsert as upsert_into
from agentos.store.columns import utcnow
from agentos.store.tables import knowledge_documents as docs
from agentos.store.tables import knowledge_tags as tags_

MARK_START, MARK_END = "<mark>", "</mark>"
SNIPPET_TOKENS = 16  # words around the match in a snippet (SQLite; PostgreSQL: MaxWords)
PREFIX_CHARS = 240  # characters of content shown for a document matched by vector only
TITLE_WEIGHT = 4.0  # SQLite: BM25 weight of the title against the content's 1.0
_PG_HEADLINE = (f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=24, MinWords=8, "
                "MaxFragments=2, FragmentDelimiter=\" … \"")
_WORD = re.compile(r"\w+")
_ENGLISH: Any = literal_column("'english'::regconfig")  # the configuration of the tsvector column

SUMMARY = (docs.c.id, docs.c.namespace, docs.c.key, docs.c.title, docs.c.tags,
           docs.c.metadata, docs.c.created_by, docs.c.updated_by, docs.c.created_at,
           docs.c.updated_at)


@dataclass(frozen=True)
class Filters:
    """What a listing or search is narrowed to: a namespace, and tags all present."""

    namespace: str | None = None
    tags: tuple[str, ...] = ()

    def clauses(self) -> list[Any]:
        out: list[Any] = []
        if self.namespace is not None:
            out.append(docs.c.namespace == self.namespace)
        for tag in self.tags:
            out.append(exists().where(tags_.c.document_id == docs.c.id, tags_.c.tag == tag))
        return out


# ------------------------------------------------------------------ writes


async def upsert(conn: AsyncConnection, values: dict[str, Any], tags: Sequence[str],
                 embedding: Sequence[float] | None) -> tuple[dict[str, Any], bool]:
    """Create or replace the document ``values["namespace"], values["key"]`` (its
    author stays the first writer); returns it (without content) and whether it is new."""
    by = values.pop("by")
    fields = {**values, "tags": list(tags), "updated_by": by, "updated_at": utcnow(),
              "embedding": _vector(conn, embedding)}
    try:
        if conn.dialect.name == "postgresql":
            stmt = upsert_into(conn, docs).values(**fields, created_by=by)
            stmt = stmt.on_conflict_do_update(
                index_elements=[docs.c.namespace, docs.c.key],
                set_={k: stmt.excluded[k] for k in fields if k not in ("namespace", "key")})
            row = (await conn.execute(stmt.returning(
                docs.c.id, literal_column("(xmax = 0)").label("created")))).one()
            doc_id, created = row.id, bool(row.created)
        else:  # the transaction holds SQLite's one write lock: look, then write
            doc_id = (await conn.execute(select(docs.c.id).where(
                docs.c.namespace == values["namespace"], docs.c.key == values["key"]))).scalar()
            created = doc_id is None
            if created:
                doc_id = (await conn.execute(insert(docs).values(**fields, created_by=by)
                                             .returning(docs.c.id))).scalar_one()
            else:
                await conn.execute(update(docs).where(docs.c.id == doc_id).values(**fields))
    except DBAPIError as exc:
        if "too long for tsvector" in str(exc.orig):  # PostgreSQL's limit on one document
            raise PayloadTooLarge("the document has too many distinct words to index",
                                  code="document_too_large") from None
        raise
    await conn.execute(delete(tags_).where(tags_.c.document_id == doc_id))
    if tags:
        await conn.execute(insert(tags_), [{"document_id": doc_id, "tag": t} for t in tags])
    row = (await conn.execute(select(*SUMMARY).where(docs.c.id == doc_id))).one()
    return dict(row._mapping), created


async def remove(conn: AsyncConnection, namespace: str, key: str) -> bool:
    """Delete one document (its tags go with it); whether there was one."""
    gone = (await conn.execute(delete(docs).where(docs.c.namespace == namespace,
                                                  docs.c.key == key).returning(docs.c.id))).first()
    return gone is not None


def _vector(conn: AsyncConnection, values: Sequence[float] | None) -> Any:
    if values is None:
        return None
    if conn.dialect.name == "postgresql":
        return list(values)
    return array("f", values).tobytes()


# ------------------------------------------------------------------- reads


async def fetch(conn: AsyncConnection, namespace: str, key: str) -> dict[str, Any] | None:
    """One document with its content, or None."""
    row = (await conn.execute(select(*SUMMARY, docs.c.content, docs.c.embedding_model).where(
        docs.c.namespace == namespace, docs.c.key == key))).first()
    return dict(row._mapping) if row else None


async def listing(conn: AsyncConnection, filters: Filters, after: tuple[str, str] | None,
                  limit: int) -> list[dict[str, Any]]:
    """Documents in (namespace, key) order, after the cursor ``after``."""
    stmt = select(*SUMMARY).where(*filters.clauses())
    if after is not None:
        stmt = stmt.where(tuple_(docs.c.namespace, docs.c.key) > tuple_(*after))
    rows = (await conn.execute(stmt.order_by(docs.c.namespace, docs.c.key).limit(limit))).all()
    return [dict(r._mapping) for r in rows]


async def text_search(conn: AsyncConnection, query: str, filters: Filters,
                      after: tuple[float, int] | None, limit: int) -> list[dict[str, Any]]:
    """Documents matching ``query``, best first (``score`` descending, higher is
    better, then ``id``), after the cursor ``after`` (score, id), each with a
    ``snippet`` that marks the match."""
    if conn.dialect.name == "postgresql":
        return await _pg_text(conn, query, filters, after, limit)
    try:
        return await _sqlite_text(conn, query, filters, after, limit)
    except OperationalError:  # not FTS5 syntax: any of its words, best first
        words = _WORD.findall(query)
        if not words:
            return []
        plain = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        return await _sqlite_text(conn, plain, filters, after, limit)


async def _sqlite_text(conn: AsyncConnection, query: str, filters: Filters,
                       after: tuple[float, int] | None, limit: int) -> list[dict[str, Any]]:
    fts = table("knowledge_fts", column("rowid"))
    bm25: Any = literal_column(f"bm25(knowledge_fts, {TITLE_WEIGHT}, 1.0)")  # lower is better
    snippet: Any = literal_column(f"snippet(knowledge_fts, -1, '{MARK_START}', '{MARK_END}', '…', "
                             f"{SNIPPET_TOKENS})")
    stmt = (select(*SUMMARY, (-bm25).label("score"), snippet.label("snippet"))
            .select_from(fts.join(docs, docs.c.id == fts.c.rowid))
            .where(literal_column("knowledge_fts").op("MATCH")(bindparam("q", query)),
                   *filters.clauses()))
    if after is not None:
        score, last = after
        stmt = stmt.where(or_(bm25 > -score, and_(bm25 == -score, docs.c.id > last)))
    rows = (await conn.execute(stmt.order_by(bm25, docs.c.id).limit(limit))).all()
    return [dict(r._mapping) for r in rows]


async def _pg_text(conn: AsyncConnection, query: str, filters: Filters,
                   after: tuple[float, int] | None, limit: int) -> list[dict[str, Any]]:
    search: Any = literal_column("knowledge_documents.search")
    tsquery = func.websearch_to_tsquery(_ENGLISH, bindparam("q", query))
    # as double precision: a real's text form is rounded, and a cursor must hold the
    # exact score to compare with
    score = cast(func.ts_rank(search, tsquery), DOUBLE_PRECISION)
    ranked = select(docs.c.id, score.label("score")).where(search.op("@@")(tsquery),
                                                             *filters.clauses()).subquery()
    page = select(ranked)
    if after is not None:
        best, last = after
        page = page.where(or_(ranked.c.score < best,
                              and_(ranked.c.score == best, ranked.c.id > last)))
    page_ = page.order_by(ranked.c.score.desc(), ranked.c.id).limit(limit).subquery()
    # the headline (costly) only for the page's rows
    headline = func.ts_headline(_ENGLISH, docs.c.content, tsquery, _PG_HEADLINE)
    stmt = (select(*SUMMARY, page_.c.score, headline.label("snippet"))
            .join_from(page_, docs, docs.c.id == page_.c.id)
            .order_by(page_.c.score.desc(), page_.c.id))
    rows = (await conn.execute(stmt)).all()
    return [{**r._mapping, "score": float(r.score)} for r in rows]


MAX_COMPARED = 20_000  # documents one vector search compares (~1 s at 1,536 dimensions, idle)


@dataclass(frozen=True)
class Nearest:
    """A vector search's answer: the best documents, and whether more documents were
    eligible than it compared (the most recently added ``compared`` were)."""

    rows: list[dict[str, Any]]
    compared: int
    partial: bool


async def vector_search(conn: AsyncConnection, vector: Sequence[float], model: str,
                        filters: Filters, limit: int, max_compared: int = MAX_COMPARED
                        ) -> Nearest:
    """The ``limit`` documents embedded by ``model`` nearest to ``vector`` (a unit
    vector) among the ``max_compared`` most recently added that ``filters`` allow:
    ``score`` is the cosine similarity; ``snippet`` the content's start."""
    eligible = (select(docs.c.id)
                .where(docs.c.embedding_model == model, docs.c.embedding.is_not(None),
                       *filters.clauses())
                .order_by(docs.c.id.desc()).limit(max_compared + 1))
    if conn.dialect.name == "postgresql":
        seen = int((await conn.execute(select(func.count()).select_from(
            eligible.subquery()))).scalar_one())
        candidates = eligible.limit(max_compared).subquery()
        pair = func.unnest(docs.c.embedding, cast(bindparam("vec", list(vector)),
                                                  ARRAY(REAL()))
                           ).table_valued("a", "b").render_derived()
        similarity: Any = select(func.sum(pair.c.a * pair.c.b)).scalar_subquery()
        scored = (await conn.execute(
            select(docs.c.id, similarity.label("score"))
            .where(docs.c.id.in_(select(candidates.c.id)))
            .order_by(literal_column("score").desc(), docs.c.id).limit(limit))).all()
        best = [(int(r.id), float(r.score or 0.0)) for r in scored]
    else:
        rows = eligible.add_columns(docs.c.embedding)
        best, seen = await conn.off_loop(  # type: ignore[attr-defined]
            lambda sync: _nearest(sync.execute(rows), vector, limit, max_compared))
    return Nearest(await _described(conn, best), min(seen, max_compared), seen > max_compared)


def _nearest(rows: Any, vector: Sequence[float], limit: int, max_compared: int
             ) -> tuple[list[tuple[int, float]], int]:
    """The ``limit`` best (id, cosine) of ``rows`` (id, float32 bytes), best first (ties:
    the lower id), read one at a time and kept in a heap; and how many rows there were
    (up to ``max_compared`` + 1: the last one is only counted)."""
    query = array("f", vector)
    size = len(query) * query.itemsize
    heap: list[tuple[float, int]] = []  # (score, -id): the worst kept on top
    seen = 0
    try:
        for doc_id, stored in rows:
            seen += 1
            if seen > max_compared:
                break
            if stored is None or len(stored) != size:
                continue  # another dimension: not comparable
            values = array("f")
            values.frombytes(stored)
            item = (float(sum(map(operator.mul, values, query))), -int(doc_id))
            if len(heap) < limit:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    finally:
        rows.close()
    return [(-neg_id, score) for score, neg_id in sorted(heap, reverse=True)], seen


async def _described(conn: AsyncConnection, best: list[tuple[int, float]]
                     ) -> list[dict[str, Any]]:
    """The documents ``best`` names (id, score), in its order, with their summaries."""
    if not best:
        return []
    prefix = func.substr(docs.c.content, 1, PREFIX_CHARS)
    found = {r.id: r._mapping for r in (await conn.execute(
        select(*SUMMARY, prefix.label("snippet")).where(
            docs.c.id.in_([i for i, _ in best])))).all()}
    return [{**found[i], "score": score} for i, score in best if i in found]
