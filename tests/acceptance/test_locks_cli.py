"""``agentos locks`` against a real server: acquire, list, show, release, force-release."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Cli


def test_locks_cli(cli: Cli) -> None:
    got = json.loads(cli.ok("locks", "acquire", "device:pixel-7", "--owner", "me",
                            "--ttl-s", "60", "--json"))
    assert got["granted"] is True and got["token"] == 1
    busy = cli("locks", "acquire", "device:pixel-7", "--owner", "you")
    assert busy.returncode == 3 and "position 1" in busy.stderr
    listed = cli.ok("locks", "list").splitlines()
    assert listed[0].split()[:3] == ["RESOURCE", "HOLDER", "TOKEN"]
    assert listed[1].split()[:3] == ["device:pixel-7", "me", "1"]
    assert cli.ok("locks", "list", "--type", "phone").strip() == ""
    [row] = json.loads(cli.ok("locks", "list", "--json"))
    assert row["holder"]["owner"] == "me"
    shown = cli.ok("locks", "show", "device:pixel-7")
    assert "holder      me" in shown and "token       1" in shown
    stale = cli("locks", "release", "device:pixel-7", "--owner", "me", "--token", "2")
    assert stale.returncode == 2 and stale.stderr.startswith("error: ") and "stale" in stale.stderr
    assert cli.ok("locks", "release", "device:pixel-7", "--owner", "me", "--token", "1"
                  ).strip() == "released device:pixel-7 token=1"
    cli.ok("locks", "acquire", "device:pixel-7", "--owner", "you")
    assert cli.ok("locks", "force-release", "device:pixel-7").strip() == (
        "force-released device:pixel-7 from you (token 2)")
    # --json: the API's answers
    got = json.loads(cli.ok("locks", "acquire", "device:pixel-8", "--owner", "me", "--json"))
    released = json.loads(cli.ok("locks", "release", "device:pixel-8", "--owner", "me",
                                 "--token", str(got["token"]), "--json"))
    assert released["released"] is True, released
    cli.ok("locks", "acquire", "device:pixel-8", "--owner", "you")
    forced = json.loads(cli.ok("locks", "force-release", "device:pixel-8", "--json"))
    assert (forced["owner"], forced["token"]) == ("you", got["token"] + 1)
    bad = cli("locks", "acquire", "pixel-7")
    assert bad.returncode == 2 and "not a resource id" in bad.stderr
    bad = cli("locks", "acquire", "device:x", "--priority", "11")
    assert bad.returncode == 2
    # option names are the API's (ttl_s, wait_s), in one spelling
    old = cli("locks", "acquire", "device:y", "--owner", "me", "--ttl", "5")
    assert old.returncode == 2 and "--ttl" in old.stderr
    waited = json.loads(cli.ok("locks", "acquire", "device:y", "--owner", "me", "--ttl-s", "5",
                               "--wait-s", "1", "--json"))
    assert waited["granted"] is True
