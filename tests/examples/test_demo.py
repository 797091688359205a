"""``agentos demo --example``: the examples listed, one run live with its dashboard."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from agentos import examples
from tests.acceptance.conftest import ADMIN_PASSWORD, AGENTOS, Cli, environment, free_port

DEMO_TIMEOUT = 90.0  # seconds for the example's scenario to finish in the demo


def test_the_examples_are_listed(tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment())
    listed = cli.ok("demo", "--example", "list").splitlines()
    assert listed[0].split() == ["NAME", "SEED", "SYSTEM", "WHAT", "IT", "SHOWS"]
    assert [line.split()[0] for line in listed[1:]] == examples.names()
    assert "business_os" in examples.names()
    done = cli("demo", "--example", "nope")
    assert done.returncode == 2
    assert done.stderr.startswith("error: no example named 'nope' (have: ")
    assert not list(tmp_path.glob("*.db"))


def test_an_example_runs_live_in_the_demo(tmp_path: Path) -> None:
    # Given an empty directory, the demo of an example serves, installs and runs it
    port = free_port()
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        demo = subprocess.Popen([*AGENTOS, "demo", "--example", "business_os", "--port",
                                 str(port)], cwd=tmp_path, env=environment(),
                                stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while "business_os: done in" not in out.read_text():
            assert demo.poll() is None, out.read_text() + err.read_text()
            assert time.monotonic() < deadline, out.read_text() + err.read_text()
            time.sleep(0.5)
        # Then the banner, the outcome and the pages to look at are printed, and the
        # server it ran on keeps serving them
        printed = out.read_text()
        assert "AgentOS example: business_os" in printed
        assert "database   sqlite:///./agentos-business_os.db" in printed
        assert "segments_in_order: ('enterprise', 10),('public-sector', 9)" in printed
        assert f"http://127.0.0.1:{port}/models/churn" in printed
        token = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login", json={
            "username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        models = httpx.get(f"http://127.0.0.1:{port}/api/v1/models/churn",
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert models["deployed"] == ["1.1.0"]
    finally:
        demo.terminate()
        demo.wait(15)
    assert (tmp_path / "agentos-business_os.db").exists()
