"""What psycopg's cursor spends turning the audited ``tasks_submit`` into what it sends,
in process, no database: its usual cursor parses the ``%(name)s`` text again on every
execution (the text is over its 4 kB cache limit); its raw cursor sends PostgreSQL's own
``$n`` text (``sql.numbered``) as it is. Client CPU a conversion, best of five rounds of
2,000, each form twice, alternated.

    .venv/bin/python bench/pg_query_convert.py
"""

from __future__ import annotations

import time

from psycopg import adapt
from psycopg._queries import PostgresQuery, PostgresRawQuery

from agentos.store import audit as store_audit
from agentos.store import sql, tasks

ROUNDS, CALLS = 5, 2000


def main() -> None:
    pyformat = sql.query("tasks_submit", "postgresql", driver=True, on_conflict="",
                         audit=store_audit.fragment("queued"), **tasks._PG_SUBMIT_FILL)
    numbered, names = tasks._PG_SUBMIT_AUDITED
    params = {name: "x" for name in names}
    values = tuple(params[name] for name in names)
    transformer = adapt.Transformer()
    forms = (("%(name)s, the usual cursor", PostgresQuery, pyformat, params),
             ("$n, the raw cursor", PostgresRawQuery, numbered, values))
    for label, kind, text, given in forms * 2:
        rounds = []
        for _ in range(ROUNDS):
            start = time.process_time()
            for _ in range(CALLS):
                kind(transformer).convert(text, given)
            rounds.append((time.process_time() - start) / CALLS * 1e6)
        print(f"{label:28} {min(rounds):6.1f} us a conversion ({len(text):,} characters)")


if __name__ == "__main__":
    main()
