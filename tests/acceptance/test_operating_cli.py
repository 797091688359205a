"""``agentos agents config|capabilities|state|remove`` against a real server."""

from __future__ import annotations

import json

import yaml

from tests.acceptance.conftest import Cli, Server

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
    assert cli.ok("agents", "remove", "tuner").startswith("deleted tuner: 1 version(s)")
    assert cli("agents", "show", "tuner").returncode == 2


def test_llm_calls_and_summary(cli: Cli, server: Server) -> None:
    from agentos.sdk import Client

    with Client(server.url) as api:  # a remote worker's report
        api.report_llm_calls([{"model": "gpt-4o-mini", "prompt_tokens": 10,
                               "completion_tokens": 4, "agent": "bot", "latency_ms": 120.0}])
    lines = cli.ok("llm", "calls").splitlines()
    assert lines[0].split()[:4] == ["ID", "AT", "AGENT", "MODEL"]
    assert lines[1].split()[2:5] == ["bot", "gpt-4o-mini", "14"]
    summary = cli.ok("llm", "summary", "--by", "agent").splitlines()
    assert summary[1].split()[:4] == ["bot", "1", "10", "4"]
    assert json.loads(cli.ok("llm", "summary", "--json"))[0]["key"] == "gpt-4o-mini"
    bad = cli("llm", "summary", "--by", "week")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
