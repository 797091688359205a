"""``agentos demo --example``: the examples listed, one run live with its dashboard."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentos import examples
from agentos.cli import demo_example
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


def test_business_os_runs_live_in_the_demo(tmp_path: Path) -> None:
    # Given an empty directory, the demo of an example serves, installs and runs it
    port = free_port()
    demo, printed = _start_demo(tmp_path, "business_os", port)
    try:
        # Then the banner, the outcome and the pages to look at are printed, and the
        # server it ran on keeps serving them
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
        _stop(demo)
    assert (tmp_path / "agentos-business_os.db").exists()


@pytest.mark.parametrize("name", [n for n in examples.names() if n != "business_os"])
def test_every_example_runs_live_in_the_demo(tmp_path: Path, name: str) -> None:
    # the demo differs from the example's test: the worker in the server process, at
    # its concurrency, on ./agentos-NAME.db
    demo, printed = _start_demo(tmp_path, name, free_port())
    _stop(demo)
    assert f"AgentOS example: {name}" in printed
    assert (tmp_path / f"agentos-{name}.db").exists()


def test_qa_fleet_runs_again_on_its_database(tmp_path: Path) -> None:
    # Given the demo ran once in this directory, a second run within the hour on the
    # same database ends too, with this run's figures (not the two runs' sum)
    for _ in range(2):
        demo, printed = _start_demo(tmp_path, "qa_fleet", free_port())
        _stop(demo)
        assert "cases: passed 14" in printed and "cases: failed 3" in printed, printed


def _start_demo(cwd: Path, name: str, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """The demo of ``name`` in ``cwd``, once its scenario is done; what it printed.
    Fails with its output if it prints an error or exits first."""
    out, err = cwd / "demo.out", cwd / "demo.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        demo = subprocess.Popen([*AGENTOS, "demo", "--example", name, "--port", str(port)],
                                cwd=cwd, env=environment(), stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while f"{name}: done in" not in out.read_text():
            said = out.read_text() + err.read_text()
            assert "error:" not in said, said
            assert demo.poll() is None, said
            assert time.monotonic() < deadline, said
            time.sleep(0.5)
        said = out.read_text() + err.read_text()
        assert "error:" not in said, said
    except BaseException:
        _stop(demo)
        raise
    return demo, out.read_text()


def _stop(demo: subprocess.Popen[bytes]) -> None:
    demo.terminate()
    try:
        demo.wait(15)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait()


def test_a_scenario_that_breaks_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an example whose scenario fails with something other than an AgentOS error
    # (a simulator's RuntimeError, an httpx error, ...)
    def install(client: Any, sims: examples.Simulators) -> list[str]:
        raise RuntimeError("the exchange's book is empty")

    broken = examples.Example(name="broken", title="Broken", seed="999", summary="fails",
                              install=install, run=lambda client, sims: {})
    monkeypatch.setattr(demo_example, "_wait_until_up", lambda client: None)
    # When its scenario thread runs, Then it prints one error line, not a traceback
    demo_example._scenario(broken, examples.Simulators(), "http://127.0.0.1:9", "key")
    said = capsys.readouterr()
    assert said.err == ("error: the broken scenario stopped: RuntimeError: the exchange's "
                        "book is empty\n")
