"""``agentos locks acquire-any`` against a real server: a list, a prefix, busy, bad input."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Cli


def test_locks_acquire_any_cli(cli: Cli) -> None:
    cli.ok("locks", "acquire", "device:ios-1", "--owner", "lab")
    got = cli.ok("locks", "acquire-any", "device:ios-1", "device:android-1", "--owner", "me")
    assert got.startswith("acquired device:android-1 token=1 expires=")
    busy = cli("locks", "acquire-any", "--prefix", "device:", "--owner", "you")
    assert busy.returncode == 3
    assert busy.stderr.strip() == ("every one is held; best place: position 1 in the queue "
                                   "of device:android-1")
    cli.ok("locks", "release", "device:ios-1", "--owner", "lab", "--token", "1")
    taken = json.loads(cli.ok("locks", "acquire-any", "--prefix", "device:", "--owner", "you",
                              "--priority", "9", "--json"))
    assert taken["resource"] == "device:ios-1" and taken["token"] == 2
    for args, says in [((), "give either resources"),
                       (("device:a", "--prefix", "device:"), "give either resources"),
                       (("--prefix", "device"), "not a resource prefix"),
                       (("--prefix", "robot:"), "no resource to choose from in robot:*"),
                       (("pixel",), "not a resource id")]:
        bad = cli("locks", "acquire-any", *args)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and says in bad.stderr
