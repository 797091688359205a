"""Benchmark: knowledge search over 100,000 documents on SQLite and PostgreSQL, beside
each engine queried directly.

For each backend a fresh database is migrated and loaded with ``--docs`` generated
documents (pseudo-words drawn from a Zipf-like vocabulary: titles of 3-6 words,
content of 60-160, two tags each, in ``--namespaces`` namespaces). The documents
are inserted in batches straight into the tables (the FTS5 triggers and the
tsvector column index them as any write does), which is how a bulk import would
load them, not one ``knowledge.put`` transaction each. Then ``--queries`` queries
(one or two words, common, middling and rare; a tenth restricted to a namespace)
each run once through:

  ours        ``knowledge.search`` in process (validation, SQLAlchemy, the store's
              ranked query with its snippet, the page's cursor): a page of 10
  engine      the same ranking and snippet as one SQL statement on the driver
              (sqlite3 on the FTS5 table; psycopg with ts_rank/ts_headline): what
              the engine costs alone, so ours / engine is our overhead

one client, sequential, after ``--warmup`` queries. Reported: p50, p99 and mean
latency, and the ratio of each to the engine's. The machine is shared: the
report states the load average before and after.

    .venv/bin/python bench/bench_knowledge.py                  # table
    .venv/bin/python bench/bench_knowledge.py --docs 20000     # quicker
    .venv/bin/python bench/bench_knowledge.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from common import (
    REPO,
    bench_parser,
    code_state,
    machine_info,
    percentile,
    run_bench,
    start_postgres,
)
from sqlalchemy import insert

from agentos import knowledge
from agentos.store import open_store, schema
from agentos.store.postgres import libpq_url
from agentos.store.tables import knowledge_documents, knowledge_tags

SEED = 20261205
BATCH = 2000  # documents per insert transaction while loading
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor",
             "fen", "gal", "hum", "jor", "bex", "cyn", "wup", "yel"]

_SQLITE_ENGINE = (
    "SELECT d.namespace, d.key, d.title, -bm25(knowledge_fts, 4.0, 1.0) AS score, "
    "snippet(knowledge_fts, -1, '<mark>', '</mark>', '…', 16) AS snippet "
    "FROM knowledge_fts JOIN knowledge_documents d ON d.id = knowledge_fts.rowid "
    "WHERE knowledge_fts MATCH ? {namespace} "
    "ORDER BY bm25(knowledge_fts, 4.0, 1.0), d.id LIMIT 11")
_PG_ENGINE = (
    "SELECT d.namespace, d.key, d.title, p.score, ts_headline('english'::regconfig, "
    "d.content, q, 'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, "
    "MaxFragments=2') AS snippet FROM (SELECT id, ts_rank(search, q)::float8 AS score "
    "FROM knowledge_documents, websearch_to_tsquery('english'::regconfig, %(q)s) q "
    "WHERE search @@ q {namespace} ORDER BY score DESC, id LIMIT 11) p "
    "JOIN knowledge_documents d ON d.id = p.id, "
    "websearch_to_tsquery('english'::regconfig, %(q)s) q ORDER BY p.score DESC, p.id")


# ------------------------------------------------------------------ the data


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Corpus:
    """Deterministic documents and queries over one vocabulary (rank r drawn with
    weight 1 / (r + 10): a few very common words, a long tail of rare ones)."""

    def __init__(self, docs: int, namespaces: int, vocab: int = 20_000) -> None:
        self.rng = random.Random(SEED)
        self.words = vocabulary(vocab, self.rng)
        self.weights = [1.0 / (rank + 10) for rank in range(len(self.words))]
        self.docs = docs
        self.namespaces = [f"ns{n}" for n in range(namespaces)]

    def _draw(self, n: int) -> list[str]:
        return self.rng.choices(self.words, self.weights, k=n)

    def documents(self) -> Iterator[tuple[dict[str, Any], list[str]]]:
        for n in range(self.docs):
            tags = [f"t{self.rng.randrange(50)}", f"k{self.rng.randrange(500)}"]
            yield ({"namespace": self.namespaces[n % len(self.namespaces)], "key": f"doc-{n:06d}",
                    "title": " ".join(self._draw(self.rng.randint(3, 6))),
                    "content": " ".join(self._draw(self.rng.randint(60, 160))) + ".",
                    "tags": tags, "metadata": {"n": n}, "created_by": "bench",
                    "updated_by": "bench"}, tags)

    def queries(self, count: int) -> list[tuple[str, str | None]]:
        """(query, namespace or None): a third each of common (rank < 50), middling
        (rank < 2,000) and rare words, one or two of them."""
        out = []
        for n in range(count):
            band = (50, 2000, len(self.words))[n % 3]
            words = [self.words[self.rng.randrange(band)]
                     for _ in range(self.rng.choice((1, 1, 2)))]
            namespace = self.rng.choice(self.namespaces) if n % 10 == 9 else None
            out.append((" ".join(words), namespace))
        return out


async def load(url: str, corpus: Corpus) -> float:
    """Insert the corpus in batches; returns the seconds it took."""
    started = time.monotonic()
    store = open_store(url)
    try:
        batch: list[tuple[dict[str, Any], list[str]]] = []
        for doc in corpus.documents():
            batch.append(doc)
            if len(batch) == BATCH:
                await _insert(store, batch)
                batch = []
        if batch:
            await _insert(store, batch)
    finally:
        await store.close()
    return time.monotonic() - started


async def _insert(store: Any, batch: list[tuple[dict[str, Any], list[str]]]) -> None:
    async with store.write() as conn:
        ids = (await conn.execute(insert(knowledge_documents).returning(
            knowledge_documents.c.id, sort_by_parameter_order=True),
            [doc for doc, _ in batch])).scalars().all()
        await conn.execute(insert(knowledge_tags), [
            {"document_id": i, "tag": t} for i, (_, tags) in zip(ids, batch, strict=True)
            for t in tags])


# -------------------------------------------------------------- measuring


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in seconds)
    return {"p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99),
            "mean_ms": statistics.fmean(ordered)}


async def time_ours(url: str, queries: list[tuple[str, str | None]], warmup: int
                    ) -> tuple[dict[str, float], float]:
    store = open_store(url)
    config = knowledge.Config()
    times: list[float] = []
    hits = 0
    try:
        for n, (q, namespace) in enumerate(queries):
            began = time.perf_counter()
            page = await knowledge.search(store, knowledge.Query(q=q, namespace=namespace,
                                                                 limit=10), config)
            took = time.perf_counter() - began
            if n >= warmup:
                times.append(took)
                hits += len(page.documents)
    finally:
        await store.close()
    return summary(times), hits / max(1, len(times))


def time_sqlite_engine(path: str, queries: list[tuple[str, str | None]], warmup: int
                       ) -> dict[str, float]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA mmap_size=268435456")
    times = []
    for n, (q, namespace) in enumerate(queries):
        sql = _SQLITE_ENGINE.format(namespace="AND d.namespace = ?" if namespace else "")
        began = time.perf_counter()
        db.execute(sql, (q, namespace) if namespace else (q,)).fetchall()
        if n >= warmup:
            times.append(time.perf_counter() - began)
    db.close()
    return summary(times)


def time_pg_engine(url: str, queries: list[tuple[str, str | None]], warmup: int
                   ) -> dict[str, float]:
    times = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for n, (q, namespace) in enumerate(queries):
            sql = _PG_ENGINE.format(namespace="AND namespace = %(ns)s" if namespace else "")
            began = time.perf_counter()
            conn.execute(sql, {"q": q, "ns": namespace}).fetchall()
            if n >= warmup:
                times.append(time.perf_counter() - began)
    return summary(times)


# ------------------------------------------------------------- per backend


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'knowledge.db'}"
        return
    with start_postgres(durable=False) as cluster:  # its own temp dir, for the postgres user
        yield cluster.create_database("knowledge")


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    corpus = Corpus(args.docs, args.namespaces)
    queries = corpus.queries(args.warmup + args.queries)
    with database(backend, workdir) as url:
        schema.upgrade(url)
        loaded_s = asyncio.run(load(url, corpus))
        if backend == "postgres":
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE knowledge_documents")
                conn.execute("VACUUM ANALYZE knowledge_tags")
        ours, hits = asyncio.run(time_ours(url, queries, args.warmup))
        engine = (time_sqlite_engine(url.removeprefix("sqlite:///"), queries, args.warmup)
                  if backend == "sqlite" else time_pg_engine(url, queries, args.warmup))
    return {"load_seconds": round(loaded_s, 1), "hits_per_query": round(hits, 2),
            "ours": ours, "engine": engine,
            "ratio": {k: ours[k] / engine[k] for k in ours if engine[k]}}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def report(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    before = load_average()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentos-bench-knowledge-") as tmp:
        for backend in args.backends:
            results[backend] = run_backend(backend, args, Path(tmp))
    return {"benchmark": "knowledge search, one client, in process, beside the engine alone",
            "command": shlex.join(["python", "bench/bench_knowledge.py", *argv]),
            "code": code_state(), "machine": machine_info(),
            "load_average": {"before": before, "after": load_average()},
            "config": {"docs": args.docs, "namespaces": args.namespaces,
                       "queries": args.queries, "warmup": args.warmup, "page": 10},
            "backends": results}


def render(data: dict[str, Any]) -> str:
    cfg, load_avg = data["config"], data["load_average"]
    lines = [f"AgentOS knowledge search: {cfg['docs']:,} documents, {cfg['queries']} queries "
             f"(after {cfg['warmup']}), pages of {cfg['page']}, one client in process",
             f"machine: {data['machine']['nproc']} CPUs, load average {load_avg['before']} "
             f"before, {load_avg['after']} after (other engineers' work shares them); "
             f"code {data['code']['commit']}",
             "",
             f"{'backend':10}{'path':34}{'p50 ms':>8}{'p99 ms':>8}{'mean ms':>9}"]
    for backend, res in data["backends"].items():
        engine = ("SQLite FTS5 via sqlite3" if backend == "sqlite"
                  else "PostgreSQL tsvector via psycopg")
        for label, key in (("knowledge.search (ours)", "ours"), (engine, "engine")):
            m = res[key]
            lines.append(f"{backend:10}{label:34}{m['p50_ms']:8.2f}{m['p99_ms']:8.2f}"
                         f"{m['mean_ms']:9.2f}")
        r = res["ratio"]
        lines.append(f"{'':10}{'ours / engine':34}{r['p50_ms']:7.2f}x{r['p99_ms']:7.2f}x"
                     f"{r['mean_ms']:8.2f}x")
    lines.append("")
    for backend, res in data["backends"].items():
        lines.append(f"{backend}: loaded in {res['load_seconds']} s; "
                     f"{res['hits_per_query']} results per query on average")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_bench(parse_args, report, render, argv)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
