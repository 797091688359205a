"""``agentos agents config|capabilities|state|remove``, ``llm``, ``budgets`` and
``metrics query`` against a real server."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.acceptance.conftest import AGENTOS, Cli, Server

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests.handlers is importable
FLUSH_S = 20.0  # seconds for recorded samples to reach the rollups (flushed every 5 s)

AGENT = {
    "name": "tuner", "version": "1.0.0",
    "handler": {"type": "python", "target": "tests.handlers:config_echo"},
    "capabilities": [{"name": "search"}],
    "config": {"level": {"type": "integer", "value": 1, "max": 5},
               "label": {"type": "string", "value": "a"}},
}


def test_config_capabilities_state_remove(cli: Cli) -> None:
    (cli.cwd / "tuner.yaml").write_text(yaml.safe_dump(AGENT))
    cli.ok("agents", "import", "tuner.yaml", "--publish")
    lines = cli.ok("agents", "config", "tuner").splitlines()
    assert lines[0].split() == ["KEY", "TYPE", "VALUE", "DEFAULT", "OVERRIDDEN", "BY"]
    assert lines[2].split()[:5] == ["level", "integer", "1", "1", "False"]
    assert cli.ok("agents", "config", "tuner", "set", "level", "4").strip() == \
        "tuner level = 4 (overridden)"
    assert cli.ok("agents", "config", "tuner", "set", "label", "42").strip() == \
        "tuner label = 42 (overridden)"  # a string key takes VALUE as it is
    assert json.loads(cli.ok("agents", "config", "tuner", "--json"))["config"][0]["value"] == "42"
    assert cli.ok("agents", "config", "tuner", "unset", "level").strip() == \
        "tuner level = 1 (the default)"
    for args in (("set", "level", "9"), ("set", "level", "four"), ("set", "nope", "1"),
                 ("frob",), ("set", "level")):
        bad = cli("agents", "config", "tuner", *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    out = cli.ok("agents", "capabilities", "tuner", "disable", "search", "--reason", "quota")
    assert out.splitlines()[1].split() == ["search", "1", "False", "True", "quota"]
    assert cli("agents", "capabilities", "tuner", "disable", "search").returncode == 2
    cli.ok("agents", "capabilities", "tuner", "enable", "search")
    shown = cli.ok("agents", "summary", "tuner", "--window", "1h")
    assert "success rate  -" in shown and "tokens        0" in shown
    assert cli("agents", "summary", "tuner", "--window", "1y").returncode == 2
    state = cli.ok("agents", "state", "tuner")
    assert "status          idle" in state
    assert json.loads(cli.ok("agents", "state", "tuner", "--json"))["queue_depth"] == 0
    cli.ok("agents", "import", "-", input="name: spare\nversion: 1.0.0\n"
           "handler: {type: python, target: 'tests.handlers:echo'}\n")
    assert json.loads(cli.ok("agents", "remove", "spare", "--json"))["versions"] == 1
    assert cli.ok("agents", "remove", "tuner").startswith("deleted tuner: 1 version(s)")
    assert cli("agents", "show", "tuner").returncode == 2


def test_remove_is_refused_while_a_task_runs_unless_forced(cli: Cli, database_url: str
                                                          ) -> None:
    cli.ok("agents", "import", "-", "--publish", input="name: sleeper\nversion: 1.0.0\n"
           "handler: {type: python, target: 'tests.handlers:slow'}\n")
    task = json.loads(cli.ok("tasks", "submit", "sleeper", "--input", '{"seconds": 120}',
                             "--json"))
    worker = subprocess.Popen([*AGENTOS, "worker", "--agents", "sleeper", "--poll", "0.05"],
                              cwd=cli.cwd, env={**cli.env, "AGENTOS_DATABASE_URL": database_url,
                                                "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while json.loads(cli.ok("agents", "state", "sleeper", "--json"))["running"] != 1:
            assert time.monotonic() < deadline, "the worker did not start the task in 30 s"
            time.sleep(0.2)
        refused = cli("agents", "remove", "sleeper")
        assert refused.returncode == 2 and refused.stderr.startswith("error: ")
        assert len(refused.stderr.strip().splitlines()) == 1 and "force" in refused.stderr
        cli.ok("agents", "show", "sleeper")  # nothing removed
        assert cli.ok("agents", "remove", "sleeper", "--force").strip().endswith(
            "1 task(s) cancelled")
        assert cli("agents", "show", "sleeper").returncode == 2
        shown = json.loads(cli.ok("tasks", "show", task["id"], "--json"))
        assert shown["cancel_requested"] or shown["status"] == "cancelled"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_llm_calls_and_summary(cli: Cli, server: Server) -> None:
    from agentos.sdk import Client

    with Client(server.url) as api:  # a remote worker's report
        api.report_llm_calls([{"model": "gpt-4o-mini", "prompt_tokens": 10,
                               "completion_tokens": 4, "agent": "bot", "latency_ms": 120.0},
                              {"model": "gpt-4o-mini", "prompt_tokens": 1, "agent": "bot",
                               "task_id": "t-1"}])
    # --task-id, the API's task_id (it was --task)
    one = json.loads(cli.ok("llm", "calls", "--task-id", "t-1", "--json"))
    assert [(c["task_id"], c["prompt_tokens"]) for c in one] == [("t-1", 1)]
    lines = cli.ok("llm", "calls").splitlines()
    assert lines[0].split()[:4] == ["ID", "AT", "AGENT", "MODEL"]
    assert lines[2].split()[2:5] == ["bot", "gpt-4o-mini", "14"]
    summary = cli.ok("llm", "summary", "--by", "agent").splitlines()
    assert summary[1].split()[:4] == ["bot", "2", "11", "4"]
    assert json.loads(cli.ok("llm", "summary", "--json"))[0]["key"] == "gpt-4o-mini"
    bad = cli("llm", "summary", "--by", "week")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_budgets_set_list_update_delete(cli: Cli) -> None:
    made = cli.ok("budgets", "set", "agent", "spender", "--limit", "30").strip()
    assert made == "budget 1: agent spender, 30 tokens a day (hard), 0 used"
    made = json.loads(cli.ok("budgets", "set", "global", "--limit", "2.5", "--metric", "cost",
                             "--period", "month", "--soft", "--json"))
    assert (made["id"], made["scope"], made["hard"], made["limit"]) == (2, "global", False, 2.5)
    lines = cli.ok("budgets", "list").splitlines()
    assert lines[0].split()[:6] == ["ID", "SCOPE", "TARGET", "METRIC", "PERIOD", "LIMIT"]
    assert lines[1].split()[:10] == ["1", "agent", "spender", "tokens", "day", "30", "0", "0",
                                     "True", "False"]
    assert lines[2].split()[:3] == ["2", "global", "-"]
    assert cli.ok("budgets", "update", "1", "--limit", "100", "--soft").strip() == \
        "budget 1: agent spender, 100 tokens a day (soft), 0 used"
    assert [b["limit"] for b in json.loads(cli.ok("budgets", "list", "--json"))] == [100, 2.5]
    assert json.loads(cli.ok("budgets", "delete", "2", "--json")) == {"deleted": 2}
    assert [b["id"] for b in json.loads(cli.ok("budgets", "list", "--json"))] == [1]
    for args in (("set", "agent", "x", "--limit", "-1"), ("set", "agent", "x", "--limit", "5",
                                                          "--period", "week"),
                 ("set", "global", "x", "--limit", "5"), ("set", "team", "--limit", "5"),
                 ("update", "1"), ("update", "9", "--limit", "5"), ("delete", "9"),
                 ("delete", "one")):
        bad = cli("budgets", *args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert [b["limit"] for b in json.loads(cli.ok("budgets", "list", "--json"))] == [100]


def test_metrics_query(cli: Cli, server: Server) -> None:
    from agentos.sdk import Client

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with Client(server.url) as api:  # a remote process's samples, flushed within seconds
        api.record_metrics(
            [{"name": "orders.placed", "kind": "counter", "value": n + 1.0,
              "tags": {"desk": desk}, "at": (now - timedelta(minutes=n)).isoformat()}
             for n in range(3) for desk in ("eu", "us")])
    args = ("metrics", "query", "orders.placed", "--agg", "sum", "--bucket", "1m",
            "--from", (now - timedelta(minutes=5)).isoformat(),
            "--to", (now + timedelta(minutes=1)).isoformat())
    deadline = time.monotonic() + FLUSH_S
    while (found := cli(*args, "--json")).returncode != 0 or \
            sum(len(g["points"]) for g in json.loads(found.stdout)["groups"]) < 3:
        assert time.monotonic() < deadline, found.stderr
        time.sleep(0.5)
    [group] = json.loads(found.stdout)["groups"]
    assert [p["value"] for p in group["points"]] == [6.0, 4.0, 2.0]  # eu + us each minute
    lines = cli.ok(*args, "--tags", "desk:eu").splitlines()
    assert lines[0].split() == ["AT", "SUM"]
    assert [line.split()[1] for line in lines[1:]] == ["3", "2", "1"]
    grouped = cli.ok(*args, "--group-by", "desk").splitlines()
    assert grouped[0].split() == ["DESK", "AT", "SUM"] and len(grouped) == 7
    whole = json.loads(cli.ok("metrics", "query", "orders.placed", "--agg", "count", "--from",
                              (now - timedelta(minutes=5)).isoformat(), "--json"))
    assert whole["groups"][0]["points"][0]["value"] == 6
    for extra in (("--agg", "median"), ("--tags", "desk"), ("--from", "yesterday"),
                  ("--bucket", "7s")):
        bad = cli(*args, *extra)
        assert bad.returncode == 2, (extra, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert cli("metrics", "query", "no.such.metric").returncode == 2
