"""Named SQL's parameter forms (store/sql.py): each driver's placeholders, from one text."""

import re

from agentos.store import sql


def test_numbered_gives_a_name_one_number_and_leaves_casts_and_literals_alone() -> None:
    text, names = sql.numbered(
        "SELECT :a::jsonb, 'x:y', :b, CAST(:a AS text), to_char(now(), 'HH24:MI') WHERE :b > 0")
    assert text == ("SELECT $1::jsonb, 'x:y', $2, CAST($1 AS text), to_char(now(), 'HH24:MI')"
                    " WHERE $2 > 0")
    assert names == ("a", "b")


def test_the_submit_statement_is_sent_as_it_is_by_a_raw_cursor() -> None:
    """tasks_submit is over psycopg's 4 kB cache limit for its ``%(name)s`` form: its
    numbered form is numbered throughout and names exactly the parameters the caller
    sends (the audited one with the audit row's)."""
    from datetime import UTC, datetime

    from agentos.store import audit as store_audit
    from agentos.store import tasks

    sent = set(tasks._submit_params([], tasks.Defaults(3, 60.0))[0])
    row = {"actor": "user:t", "actor_role": None, "action": "tasks.submit", "outcome": "ok",
           "resource_type": "task", "resource_id": None, "ip": None, "user_agent": None}
    audited = set(store_audit._params(datetime.now(UTC), row, {}, "[]"))
    for (statement, names), given in ((tasks._PG_SUBMIT, sent),
                                      (tasks._PG_SUBMIT_AUDITED, sent | audited)):
        assert not re.search(r"(?<!:):[a-z_]+|%\(", statement)
        used = {int(n) for n in re.findall(r"\$(\d+)", statement)}
        assert used == set(range(1, len(names) + 1)) and set(names) == given
