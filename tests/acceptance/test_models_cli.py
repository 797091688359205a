"""``agentos models`` against a real server: register, list, show, deploy, archive."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Cli


def test_register_list_show_deploy_archive(cli: Cli) -> None:
    out = cli.ok("models", "register", "churn", "1", "--type", "classification",
                 "--framework", "sklearn", "--metrics", '{"auc": 0.81}',
                 "--artifact-uri", "s3://models/churn/1")
    assert out.strip() == "registered churn 1 (training)"
    cli.ok("models", "register", "churn", "2", "--type", "classification")
    assert cli.ok("models", "deploy", "churn", "1").strip() == "churn 1: deployed"
    deployed = json.loads(cli.ok("models", "deploy", "churn", "2", "--json"))
    assert (deployed["name"], deployed["version"], deployed["status"]) == (
        "churn", "2", "deployed")
    shown = cli.ok("models", "show", "churn").splitlines()
    assert shown[0] == "deployed: 2"
    assert shown[1].split()[:3] == ["NAME", "VERSION", "STATUS"]
    assert shown[2].split()[:3] == ["churn", "2", "deployed"]
    assert shown[3].split()[:3] == ["churn", "1", "archived"]
    one = json.loads(cli.ok("models", "show", "churn", "1", "--json"))
    assert one["metrics"] == {"auc": 0.81} and one["status"] == "archived"
    listed = json.loads(cli.ok("models", "list", "--status", "deployed", "--json"))
    assert [(m["name"], m["version"]) for m in listed] == [("churn", "2")]
    archived = json.loads(cli.ok("models", "archive", "churn", "2", "--json"))
    assert (archived["version"], archived["status"]) == ("2", "archived")
    for args in (("deploy", "churn", "1"), ("register", "churn", "1", "--type", "x"),
                 ("register", "x", "1", "--type", "t", "--metrics", "[]"),
                 ("show", "ghost")):
        bad = cli("models", *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
