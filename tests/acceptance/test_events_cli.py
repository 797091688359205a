"""``agentos events`` and ``agentos schedules`` against a real server, on both backends.

Each CLI call is a fresh process (about half a second), so the scenarios set
up and check the server's state through the SDK where the CLI's output is not
the point.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agentos.cli import output
from agentos.sdk import Client
from tests.acceptance.conftest import Cli, Server

ROUTE_TIMEOUT = 10.0  # seconds for the router to handle an event


@pytest.fixture
def sdk(server: Server) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


def emitted(out: str) -> tuple[int, str]:
    """The seq and id of ``agentos events emit``'s line."""
    found = re.fullmatch(r"emitted \S+ seq=(\d+) id=(\S+)\n", out)
    assert found, out
    return int(found[1]), found[2]


def fields(out: str) -> dict[str, str]:
    """``label  value`` lines as a dict."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())


def wait_routed(api: Client, event_id: str) -> None:
    deadline = time.monotonic() + ROUTE_TIMEOUT
    while not api.event_routes(event_id).routed:
        assert time.monotonic() < deadline, f"event {event_id} not routed in {ROUTE_TIMEOUT}s"
        time.sleep(0.05)


def test_emit_list_show_routes_chain_and_bad_input(cli: Cli, sdk: Client) -> None:
    # Given qa-manager, published: it takes alert.* events of severity high or critical
    cli.ok("agents", "import", "--template", "qa-manager", "--publish")

    # When an alert is emitted through the CLI, it is stored as given
    out = cli.ok("events", "emit", "alert.cpu", "--payload", '{"severity": "high"}',
                 "--priority", "high", "--source", "monitor")
    seq, alert_id = emitted(out)
    api = sdk
    event = api.get_event(alert_id)
    assert (event.seq, event.type, event.payload, event.priority,
            event.source, event.correlation_id) == (
        seq, "alert.cpu", {"severity": "high"}, "high", "monitor", alert_id)

    # and what it caused joins its correlation: two children, one grandchild
    plan = api.emit("qa.plan", correlation_id=alert_id, causation_id=alert_id)
    run = api.emit("qa.run", correlation_id=alert_id, causation_id=plan.id)
    report = api.emit("qa.report", {"ok": True}, correlation_id=alert_id,
                      causation_id=alert_id)
    api.emit("alert.disk", {"severity": "low"})

    # list: a type glob, and --json with a correlation filter
    lines = cli.ok("events", "list", "--type", "qa.*").splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "TYPE", "SOURCE", "PRIORITY", "ID", "PAYLOAD"]
    assert [line.split()[2] for line in lines[1:]] == ["qa.plan", "qa.run", "qa.report"]
    listed = json.loads(cli.ok("events", "list", "--correlation-id", alert_id, "--json"))
    # (the routed alert's task adds its task.* events to the correlation too)
    assert [e["seq"] for e in listed if not e["type"].startswith("task.")] == [
        seq, plan.seq, run.seq, report.seq]
    limited = json.loads(cli.ok("events", "list", "--correlation-id", alert_id, "--limit",
                                "2", "--json"))
    assert [e["seq"] for e in limited] == [e["seq"] for e in listed[:2]]

    shown = fields(cli.ok("events", "show", alert_id))
    assert (shown["seq"], shown["type"], shown["priority"], shown["payload"],
            shown["causation id"]) == (str(seq), "alert.cpu", "high", '{"severity":"high"}', "-")

    # routes: exactly one, to qa-manager's only trigger
    wait_routed(api, alert_id)
    rows = cli.ok("events", "routes", alert_id).splitlines()
    assert rows[0].split() == ["AGENT", "VERSION", "TRIGGER", "PRIORITY", "TASK", "ROUTED"]
    assert [row.split()[:4] for row in rows[1:]] == [["qa-manager", "1.0.0", "0", "8"]]
    assert len(rows[1].split()[4]) == 36  # the route's task id

    # chain: the causation tree, from the correlation id or any event in it
    tree = cli.ok("events", "chain", alert_id)
    # the routed task and its lifecycle sit in the tree too; look at the events emitted here
    lines = [line for line in tree.splitlines() if "task" not in line.split("  seq=")[0]]
    labels = [line.split("  seq=")[0].lstrip("│├└─ ") for line in lines]
    assert labels == [f"correlation {alert_id}", "alert.cpu", "qa.plan", "qa.run", "qa.report"]
    depth = {label: len(line) - len(line.lstrip("│├└─ ")) for label, line in
             zip(labels, lines, strict=True)}
    assert depth["qa.run"] > depth["qa.plan"] == depth["qa.report"] > depth["alert.cpu"]
    assert f"seq={report.seq}" in lines[-1]
    assert cli.ok("events", "chain", run.id) == tree

    # bad input: one line, exit 2, nothing written
    head = api.list_events(after_seq=0, limit=1000).events[-1].seq
    done = cli("events", "emit", "alert.cpu", "--payload", "{severity: high}")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("error: --payload is not valid JSON: ")
    assert len(done.stderr.splitlines()) == 1
    done = cli("events", "emit", "Alert CPU!")
    assert (done.returncode, done.stderr) == (
        2, "error: type: 'Alert CPU!' is not an event type "
           "(dotted words of letters, digits, '_' or '-')\n")
    assert api.list_events(after_seq=head).events == []


def test_schedules_and_prune(cli: Cli, sdk: Client) -> None:
    api = sdk
    # events to prune later: two of type old.*, one other
    api.emit_batch([{"type": "old.a"}, {"type": "keep.b"}, {"type": "old.c"}])
    emitted_at = time.monotonic()

    # a cron schedule in a time zone fires at 03:00 Paris time
    out = cli.ok("schedules", "create", "nightly", "--cron", "0 3 * * *", "--timezone",
                 "Europe/Paris", "--event", "report.nightly", "--payload", '{"scope": "all"}')
    nightly = api.get_schedule("nightly").model_dump(mode="json")
    next_run = datetime.fromisoformat(nightly["next_run_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (next_run.hour, next_run.minute) == (3, 0)
    assert nightly["event"] == {"type": "report.nightly", "payload": {"scope": "all"},
                                "priority": "normal"}
    stamp = output.timestamp(nightly["next_run_at"])
    assert out == f"created schedule nightly: cron 0 3 * * * (Europe/Paris), next run {stamp}\n"
    api.create_schedule("hourly", "tick", interval_s=3600)

    rows = cli.ok("schedules", "list").splitlines()
    assert re.split(r"\s{2,}", rows[0]) == ["NAME", "WHEN", "EVENT", "TASK", "STATE",
                                             "NEXT RUN", "LAST RUN", "FIRED"]
    assert [re.split(r"\s{2,}", row)[:6] for row in rows[1:]] == [
        ["hourly", "every 3600s", "tick", "-", "active",
         output.timestamp(api.get_schedule("hourly").next_run_at)],
        ["nightly", "cron 0 3 * * * (Europe/Paris)", "report.nightly", "-", "active", stamp]]

    assert cli.ok("schedules", "pause", "nightly") == "paused schedule nightly\n"
    assert api.get_schedule("nightly").paused is True
    assert cli.ok("schedules", "resume", "nightly") == \
        f"resumed schedule nightly, next run {stamp}\n"
    assert api.get_schedule("nightly").paused is False
    # --json on each: the schedule as the API answers it
    paused = json.loads(cli.ok("schedules", "pause", "nightly", "--json"))
    assert (paused["name"], paused["paused"]) == ("nightly", True)
    assert json.loads(cli.ok("schedules", "resume", "nightly", "--json"))["paused"] is False
    cli.ok("schedules", "create", "spare", "--cron", "0 3 * * *", "--event", "x.y")
    assert json.loads(cli.ok("schedules", "delete", "spare", "--json")) == {"deleted": "spare"}
    assert cli.ok("schedules", "delete", "nightly") == "deleted schedule nightly\n"
    assert [s.name for s in api.list_schedules().schedules] == ["hourly"]

    # a bad cron: one line, exit 2, nothing created
    done = cli("schedules", "create", "bad", "--cron", "61 * * * *", "--event", "x")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "is not a cron expression" in done.stderr
    assert [s.name for s in api.list_schedules().schedules] == ["hourly"]

    # prune: the dry run counts; without --yes and without a terminal it refuses
    time.sleep(max(0.0, 1.2 - (time.monotonic() - emitted_at)))
    prune = ("events", "prune", "--older-than", "1s", "--type", "old.*")
    assert cli.ok(*prune, "--dry-run") == "would delete 2 events older than 1s of type old.*\n"
    assert json.loads(cli.ok(*prune, "--dry-run", "--json")) == {"would_delete": 2, "kept": 0}
    done = cli(*prune, input="")
    assert (done.returncode, done.stderr) == (
        2, "error: refusing to delete 2 events older than 1s of type old.* without "
           "confirmation: pass --yes\n")
    assert len(api.list_events().events) == 3
    assert cli.ok(*prune, "--yes") == "deleted 2 events older than 1s of type old.*\n"
    assert json.loads(cli.ok(*prune, "--yes", "--json")) == {"deleted": 0, "kept": 0}
    assert [e.type for e in api.list_events().events] == ["keep.b"]


def test_schedules_that_submit_tasks_and_update(cli: Cli, sdk: Client) -> None:
    api = sdk
    cli.ok("agents", "import", "--template", "executor", "--publish")

    # a schedule that only submits a task
    out = cli.ok("schedules", "create", "sweep", "--interval-s", "3600", "--task-agent", "executor",
                 "--task-input", '{"suite": "smoke"}', "--task-priority", "7")
    sweep = api.get_schedule("sweep").model_dump(mode="json")
    assert out == f"created schedule sweep: every 3600s, next run " \
                  f"{output.timestamp(sweep['next_run_at'])}\n"
    assert sweep["event"] is None
    assert sweep["task"] == {"agent": "executor", "input": {"suite": "smoke"}, "priority": 7}
    shown = fields(cli.ok("schedules", "show", "sweep"))
    assert (shown["task"], shown["task input"], shown["task priority"], shown["event"]) == (
        "executor", '{"suite":"smoke"}', "7", "-")

    # update: a new interval and an event too; the task stays as it was
    out = cli.ok("schedules", "update", "sweep", "--interval-s", "600", "--event", "sweep.tick",
                 "--payload", '{"scope": "all"}')
    sweep = api.get_schedule("sweep").model_dump(mode="json")
    assert out == f"updated schedule sweep: every 600s, next run " \
                  f"{output.timestamp(sweep['next_run_at'])}\n"
    assert sweep["interval_s"] == 600
    assert sweep["event"] == {"type": "sweep.tick", "payload": {"scope": "all"},
                              "priority": "normal"}
    assert sweep["task"]["input"] == {"suite": "smoke"}
    # one field of the task changes, the others stay; then the event goes
    cli.ok("schedules", "update", "sweep", "--task-input", '{"suite": "full"}')
    assert api.get_schedule("sweep").model_dump(mode="json")["task"] == {"agent": "executor",
                                                 "input": {"suite": "full"}, "priority": 7}
    cli.ok("schedules", "update", "sweep", "--no-event", "--misfire", "skip")
    sweep = api.get_schedule("sweep").model_dump(mode="json")
    assert (sweep["event"], sweep["misfire"]) == (None, "skip")

    # bad updates: one line, exit 2, nothing changed
    for args, message in [
        (("sweep",), "nothing to change"),
        (("sweep", "--no-task"), "give an event to fire, a task to submit, or both"),
        (("sweep", "--task-agent", "ghost"), "no published version of agent ghost"),
        (("sweep", "--interval-s", "0"), "interval_s"),
        (("sweep", "--interval-s", "5", "--cron", "* * * * *"), "at most one of"),
        (("sweep", "--task-input", "[1]"), "--task-input must be a JSON object"),
        (("sweep", "--payload", "{}"), "--payload and --priority need --event"),
        (("nosuch", "--interval-s", "5"), "no schedule named nosuch"),
    ]:
        done = cli("schedules", "update", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr
    assert api.get_schedule("sweep").model_dump(mode="json") == sweep

    # create needs something to fire, and a runnable agent
    for args, message in [
        (("none", "--interval-s", "5"), "give --event TYPE, --task-agent NAME, or both"),
        (("ghostly", "--interval-s", "5", "--task-agent", "ghost"),
         "no published version of agent ghost"),
        (("orphan", "--interval-s", "5", "--event", "x", "--task-input", "{}"),
         "need --task-agent"),
    ]:
        done = cli("schedules", "create", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert [s.name for s in api.list_schedules().schedules] == ["sweep"]


def test_subscription_reads_wait_for_the_next_event(cli: Cli, sdk: Client) -> None:
    api = sdk
    api.create_subscription("feed", "feed.*")
    began = time.monotonic()
    assert json.loads(cli.ok("subscriptions", "pending", "feed", "--wait-s", "0.5", "--json")) == []
    assert time.monotonic() - began >= 0.5
    # a read waiting longer than the client's own timeout still gets the event
    timer = threading.Timer(1.5, api.emit, ("feed.one",))
    timer.start()
    try:
        with Client(api.base_url, timeout=1.0) as impatient:
            [event] = impatient.pending("feed", wait_s=10)
    finally:
        timer.join()
    assert event.type == "feed.one"


def test_subscription_commands_print_json(cli: Cli, sdk: Client) -> None:
    made = json.loads(cli.ok("subscriptions", "create", "jfeed", "--type", "j.*", "--json"))
    assert (made["name"], made["type"]) == ("jfeed", "j.*")
    emitted = sdk.emit("j.one")
    acked = json.loads(cli.ok("subscriptions", "ack", "jfeed", str(emitted.seq), "--json"))
    assert (acked["name"], acked["cursor_seq"]) == ("jfeed", emitted.seq)
    assert json.loads(cli.ok("subscriptions", "delete", "jfeed", "--json")) == {
        "deleted": "jfeed"}


def test_schedules_fires_lists_what_each_tick_made(cli: Cli, sdk: Client) -> None:
    api = sdk
    cli.ok("agents", "import", "--template", "executor", "--publish")
    cli.ok("schedules", "create", "pulse", "--interval-s", "0.5", "--task-agent", "executor")
    deadline = time.monotonic() + ROUTE_TIMEOUT
    while len(api.list_schedule_fires("pulse").fires) < 3:
        assert time.monotonic() < deadline, "the scheduler did not fire three ticks"
        time.sleep(0.1)
    api.pause_schedule("pulse")
    fires = api.list_schedule_fires("pulse").fires
    assert all(f.task_id for f in fires) and not any(f.event_id for f in fires)

    done = cli("schedules", "fires", "pulse", "--limit", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["FIRED", "AT", "TICK", "LATE", "EVENT", "TASK", "ERROR"]
    assert [line.split()[-2] for line in lines[1:]] == [f.task_id for f in fires[:2]]
    assert done.stderr == (f"more follow: agentos schedules fires pulse --limit 2 "
                           f"--before {fires[1].id}\n")
    older = json.loads(cli.ok("schedules", "fires", "pulse", "--limit", "2", "--before",
                              fires[1].id, "--json"))
    assert [f["task_id"] for f in older] == [f.task_id for f in fires[2:4]]

    done = cli("schedules", "fires", "nosuch")
    assert (done.returncode, done.stderr) == (2, "error: no schedule named nosuch\n")
