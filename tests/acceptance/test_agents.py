"""``agentos agents ...`` against a real server, on both backends.

Each CLI call is a fresh process (about half a second), so the scenarios check
the server's state through the SDK where the CLI's output is not the point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agentos import errors, templates
from agentos.sdk import Client
from tests.acceptance.conftest import Cli, Server, environment, free_port

EXAMPLE = Path(__file__).parent / "data" / "qa-manager.yaml"


def registry(server: Server, **filters: str) -> list[tuple[str, str, str]]:
    with Client(server.url) as api:
        return [(a.name, a.version, a.status) for a in api.list_agents(**filters).agents]


def test_import_list_show_export_and_bad_files(cli: Cli, server: Server,
                                              tmp_path: Path) -> None:
    # Given two starter templates and the shipped example, imported and published
    out = cli.ok("agents", "import", "--template", "explorer", "-t", "executor", "--publish")
    assert out.splitlines() == ["imported explorer 1.0.0 (published) from explorer template",
                                "imported executor 1.0.0 (published) from executor template"]
    out = cli.ok("agents", "import", str(EXAMPLE), "--publish")
    assert out.strip() == f"imported qa-manager 1.0.0 (published) from {EXAMPLE}"

    # Then the table lists all three, and --json says the same
    lines = cli.ok("agents", "list").splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "STATUS", "TAGS", "DESCRIPTION"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["executor", "1.0.0", "published", "qa,execution"],
        ["explorer", "1.0.0", "published", "qa,discovery"],
        ["qa-manager", "1.0.0", "published", "qa,continuous"],
    ]
    listed = json.loads(cli.ok("agents", "list", "--json"))
    assert [(a["name"], a["status"], a["tags"]) for a in listed] == [
        ("executor", "published", ["qa", "execution"]),
        ("explorer", "published", ["qa", "discovery"]),
        ("qa-manager", "published", ["qa", "continuous"])]
    # and the filters reach the server
    filtered = json.loads(cli.ok("agents", "list", "--tag", "qa", "--event", "alert.disk",
                                 "--json"))
    assert [a["name"] for a in filtered] == ["qa-manager"]

    # show, for people and for scripts
    shown = cli.ok("agents", "show", "qa-manager")
    assert "display name  QA Manager\n" in shown
    assert "status        published\n" in shown
    document = yaml.safe_load(EXAMPLE.read_text())
    assert json.loads(cli.ok("agents", "show", "qa-manager", "--json"))["definition"] == document

    # export gives back the imported document (modulo key order)
    assert yaml.safe_load(cli.ok("agents", "export", "qa-manager")) == document
    exported = tmp_path / "exported.yaml"
    cli.ok("agents", "export", "qa-manager", "--version", "1.0.0", "-o", str(exported))
    assert yaml.safe_load(exported.read_text()) == document

    # When a file has three mistakes: one line for each, with file, YAML line and field
    before = registry(server)
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: Not-A-Slug\nversion: "1.0"\nhandler: {type: python, target: "m:f"}\n'
                   "colour: red\n")
    done = cli("agents", "import", str(bad), "--publish")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert [line.split(": ")[:3] for line in lines] == [
        ["error", f"{bad}:1", "name"], ["error", f"{bad}:2", "version"],
        ["error", f"{bad}:4", "colour"]]
    assert lines[2].endswith("unknown field")
    assert done.stdout == ""

    # malformed YAML: one line
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [explorer\n")
    done = cli("agents", "import", str(broken))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"error: {broken}:") and "malformed YAML" in done.stderr
    assert registry(server) == before

    # several files: those before the bad one are imported, none after it
    first, last = tmp_path / "first.yaml", tmp_path / "last.yaml"
    first.write_text(templates.read("explorer").replace("version: 1.0.0", "version: 2.0.0"))
    last.write_text(templates.read("executor").replace("version: 1.0.0", "version: 2.0.0"))
    done = cli("agents", "import", str(first), str(bad), str(last))
    assert done.returncode == 2
    assert done.stdout == f"imported explorer 2.0.0 (draft) from {first}\n"
    assert registry(server) == before
    assert registry(server, status="draft") == [("explorer", "2.0.0", "draft")]


# The CLI is the same on both backends and tests/api walks the lifecycle on
# both; here one backend keeps the suite within its time budget.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_version_lifecycle(cli: Cli, server: Server) -> None:
    cli.ok("agents", "import", "--template", "explorer")
    assert registry(server) == [("explorer", "1.0.0", "draft")]
    assert cli.ok("agents", "publish", "explorer", "1.0.0") == "explorer 1.0.0 is now published\n"

    # a newer draft, from stdin, does not replace the published version as current
    newer = templates.read("explorer").replace("version: 1.0.0", "version: 1.1.0")
    cli.ok("agents", "import", "-", input=newer)
    rows = [line.split()[:2] for line in cli.ok("agents", "versions", "explorer").splitlines()]
    assert rows == [["VERSION", "STATUS"], ["1.1.0", "draft"], ["1.0.0", "published"]]
    assert registry(server) == [("explorer", "1.0.0", "published")]
    assert cli.ok("agents", "delete", "explorer", "1.1.0") == "deleted draft explorer 1.1.0\n"
    cli.ok("agents", "import", "-", input=newer)
    assert json.loads(cli.ok("agents", "delete", "explorer", "1.1.0", "--json")) == {
        "deleted": {"name": "explorer", "version": "1.1.0"}}

    # a published version is frozen: one line, exit 2
    done = cli("agents", "delete", "explorer", "1.0.0")
    assert done.returncode == 2
    assert done.stderr.startswith("error: explorer 1.0.0 is published")
    assert len(done.stderr.splitlines()) == 1

    assert cli.ok("agents", "deprecate", "explorer", "1.0.0") == \
        "explorer 1.0.0 is now deprecated\n"
    assert registry(server, event="qa.explore.requested") == []  # no longer routed
    assert cli.ok("agents", "archive", "explorer", "1.0.0") == "explorer 1.0.0 is now archived\n"
    assert registry(server) == [("explorer", "1.0.0", "archived")]

    # the SDK raises the server's error, by status, with its code and details
    with Client(server.url) as api:
        with pytest.raises(errors.Conflict) as conflict:
            api.publish("explorer", "1.0.0")
        assert conflict.value.code == "invalid_transition"
        with pytest.raises(errors.NotFound) as missing:
            api.get_version("explorer", "9.9.9")
        assert missing.value.details == {"name": "explorer", "version": "9.9.9"}
        with pytest.raises(errors.ValidationFailed) as invalid:
            api.import_yaml("name: x\nversion: 1.0.0\n")
        assert [e["path"] for e in invalid.value.details["errors"]] == ["handler"]


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = Cli(tmp_path, environment(AGENTOS_URL=url))("agents", "list")
    assert done.returncode == 2
    assert done.stderr == (f"error: cannot reach the AgentOS server at {url} "
                           "(is `agentos serve` running?)\n")


def test_usage_error_is_one_line(tmp_path: Path) -> None:
    done = Cli(tmp_path)("agents", "publish", "explorer")
    assert done.returncode == 2
    assert done.stderr.startswith("error: Missing argument 'VERSION'")
    assert len(done.stderr.splitlines()) == 1
