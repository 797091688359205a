"""``agentos knowledge`` against a real server: put, get, search, rm and import DIR."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.acceptance.conftest import Cli


def test_put_get_search_rm_and_import(cli: Cli, tmp_path: Path) -> None:
    out = cli.ok("knowledge", "put", "runbooks", "disk-full", "--title", "Disk full",
                 "--content", "Rotate the logs, then free the cache.", "--tag", "ops")
    assert out.strip() == "stored runbooks/disk-full"
    assert cli.ok("knowledge", "get", "runbooks", "disk-full").strip() == (
        "Rotate the logs, then free the cache.")
    table = cli.ok("knowledge", "search", "rotate").splitlines()
    assert table[0].split()[:4] == ["NAMESPACE", "KEY", "SCORE", "TITLE"]
    assert "disk-full" in table[1] and "<mark>Rotate</mark>" in table[1]

    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "setup.md").write_text("# Setting up\n\nInstall the agent first.\n")
    (docs / "faq.txt").write_text("Why is my task not running? Ask explain.\n")
    (docs / "image.png").write_bytes(b"\x89PNG")
    done = cli("knowledge", "import", str(docs), "--namespace", "guide", "--tag", "docs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 2 documents into guide"
    assert "importing into guide" in done.stderr  # the progress bar
    listed = json.loads(cli.ok("knowledge", "search", "--namespace", "guide", "--json"))
    assert [(d["key"], d["title"]) for d in listed["documents"]] == [
        ("faq.txt", "faq"), ("guides:setup.md", "Setting up")]
    # one document a page: the hint (stderr) names the command for the next page, filters
    # kept; followed hint by hint it gives each document once, and the last says nothing
    keys, args = [], ["knowledge", "search", "--namespace", "guide", "--limit", "1", "--json"]
    while True:
        page = cli(*args)
        assert page.returncode == 0, page.stderr
        keys += [d["key"] for d in json.loads(page.stdout)["documents"]]
        if not page.stderr:
            break
        hint = page.stderr.strip()
        assert hint.startswith("more follow: agentos knowledge search --namespace guide "
                               "--limit 1 --json --cursor "), hint
        args = shlex.split(hint.removeprefix("more follow: agentos "))
    assert keys == ["faq.txt", "guides:setup.md"]
    first = cli("knowledge", "search", "--namespace", "guide", "--limit", "1")
    assert len(first.stdout.splitlines()) == 2 and first.stderr.startswith("more follow: ")
    found = json.loads(cli.ok("knowledge", "search", "install", "--tag", "docs", "--json"))
    assert [d["key"] for d in found["documents"]] == ["guides:setup.md"]

    again = json.loads(cli.ok("knowledge", "import", str(docs), "--namespace", "guide", "--json"))
    assert again == {"namespace": "guide", "imported": 2,
                     "keys": ["faq.txt", "guides:setup.md"]}
    removed = cli.ok("knowledge", "rm", "runbooks", "disk-full")
    assert removed.strip() == "deleted runbooks/disk-full"
    assert json.loads(cli.ok("knowledge", "rm", "guide", "faq.txt", "--json")) == {
        "deleted": {"namespace": "guide", "key": "faq.txt"}}
    for args in (("get", "runbooks", "disk-full"), ("put", "a/b", "k", "--content", "x"),
                 ("put", "ns", "k"), ("put", "ns", "k", "--content", "x", "--metadata", "[1]"),
                 ("import", str(tmp_path / "nothing-here")), ("search", "--limit", "0")):
        bad = cli("knowledge", *args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
