"""Helpers shared by the benchmarks: ports, server processes, /proc readings, percentiles.

Linux only (it reads /proc). Standard library only, so the load generator can
import it without pulling in the application.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = REPO.parent / "shared" / "peers"
# the peers' own venvs (``make bench`` makes them): the task queues' (Celery, pgqueuer,
# Procrastinate) and the workflow engines' (DBOS, Prefect)
PEERS_VENV = BENCH / ".peers-venv"
WORKFLOW_PEERS_PYTHON = BENCH / ".workflow-peers-venv" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# every benchmarked server creates this first admin; Server.start logs in and puts
# the token in AGENTOS_TOKEN, which the load generators (child processes) send
ADMIN_PASSWORD = "bench-admin-password"


def auth_headers() -> dict[str, str]:
    token = os.environ.get("AGENTOS_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def child_env(env: Mapping[str, str], *first: Path) -> dict[str, str]:
    """``env`` for a process this benchmark starts (a server, a worker, a lock client):
    its ``PYTHONPATH`` leads with ``first``, then the folder of the ``agentos`` this
    script would import, so the child runs the same code as its parent whichever tree
    PYTHONPATH or compare.sh chose; the given entries follow, made absolute (children
    run in other folders)."""
    spec = importlib.util.find_spec("agentos")  # found, not imported
    ours = [Path(spec.origin).parent.parent] if spec and spec.origin else []
    given = [Path(p).resolve() for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = list(dict.fromkeys(str(p) for p in (*first, *ours, *given)))
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def worker_env(url: str) -> dict[str, str]:
    """The environment of an ``agentos worker`` this benchmark starts: the bench folder
    on its path for the handlers."""
    env = child_env({**os.environ, "AGENTOS_DATABASE_URL": url,
                     "AGENTOS_LOG_LEVEL": "warning"}, BENCH)
    env.pop("AGENTOS_AUTO_UPGRADE", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# ------------------------------------------------------------------ /proc


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in kB."""
    figures: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name: [0] is field 3 (state) of proc(5)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def settle(pid: int, quiet_s: float = 0.3, timeout_s: float = 30.0) -> float:
    """Waits until a process has been (nearly) idle for ``quiet_s`` on end: at most one
    clock tick of CPU a tenth of a second, so a server's followers have folded what the
    last phase appended. At most ``timeout_s`` (then a warning on stderr: the next phase
    starts on a busy server); answers the seconds waited."""
    start = time.monotonic()
    quiet_since, last = start, process_cpu_s(pid)
    while (now := time.monotonic()) - start < timeout_s:
        if now - quiet_since >= quiet_s:
            return now - start
        time.sleep(0.1)
        cpu = process_cpu_s(pid)
        if cpu - last > 1.5 / CLK_TCK:
            quiet_since = time.monotonic()
        last = cpu
    print(f"warning: process {pid} still busy after {timeout_s:.0f} s: the next phase "
          "starts before it settled, and its figures are low", file=sys.stderr)
    return time.monotonic() - start


def parent_pid(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def tree_cpu_s(root: int) -> float:
    """CPU seconds of a process and its children, live and already reaped.

    For a PostgreSQL postmaster: itself, every backend now running, and every
    backend that has exited (the kernel adds those to the parent's cutime/cstime).
    """
    fields = _stat_fields(root)
    total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat_fields(entry.name)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        if child[1] == str(root):
            total += int(child[11]) + int(child[12])
    return total / CLK_TCK


@dataclass(frozen=True)
class MachineCpu:
    """A /proc/stat reading: jiffies spent busy, idle and stolen over all CPUs."""

    busy: int
    idle: int
    steal: int

    @classmethod
    def read(cls) -> MachineCpu:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, first[1:9])
        return cls(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)

    def busy_cores_since(self, before: MachineCpu, seconds: float) -> float:
        """How many CPUs were busy on average between ``before`` and this reading."""
        return (self.busy - before.busy) / CLK_TCK / seconds


class RssSampler:
    """Samples a process's VmRSS in a thread and keeps the highest value."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, memory_kb(self.pid).get("VmRSS", 0))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------- server process


@dataclass
class Server:
    """A uvicorn server in its own process, started with ``start()``, stopped on exit."""

    app: str
    env: Mapping[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    token: str = ""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "--factory", self.app, "--host", self.host,
                "--port", str(self.port), "--log-level", "warning", "--no-access-log"]

    def start(self, timeout: float = 30.0) -> Server:
        log = (self.cwd / f"server-{self.port}.log").open("wb")
        # (ADMIN_PASSWORD: so start() can log in)
        env = child_env({**self.env, "AGENTOS_ADMIN_PASSWORD": ADMIN_PASSWORD})
        self.process = subprocess.Popen(self.command(), env=env, cwd=self.cwd,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_healthy(timeout)
        self.token = self.login()
        os.environ["AGENTOS_TOKEN"] = self.token
        return self

    def login(self) -> str:
        """An admin token for this server (every API call but /health needs one)."""
        import json

        request = urllib.request.Request(
            self.base_url + "/api/v1/auth/login", method="POST",
            data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["token"])

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /health in {timeout:.0f} s:\n"
                           + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        path = self.cwd / f"server-{self.port}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --------------------------------------------------------------- the machine


def calibrate(timeout: float = 30.0) -> float | None:
    """The peers' CPU anchor (``calib.py``: pure-Python loop, iterations/s, median of 5).

    Calls ``calib.work()`` in a child process rather than running the script,
    which would append to the peers' read-only ``raw.jsonl``. None when the
    peers' folder is not there.
    """
    if not (PEERS / "calib.py").exists():
        return None
    code = ("import statistics, sys; sys.path.insert(0, sys.argv[1]); import calib; "
            "print(statistics.median(calib.work() for _ in range(5)))")
    try:
        out = subprocess.run([sys.executable, "-c", code, str(PEERS)], capture_output=True,
                             text=True, timeout=timeout, check=True).stdout
        return float(out.strip())
    except (subprocess.SubprocessError, ValueError):
        return None


def machine_info() -> dict[str, object]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
    }


def code_state() -> dict[str, object]:
    """The commit measured, and whether the working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "src"))}


def _cpu_model() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


# ------------------------------------------------------- throwaway peers' servers


def _postgres_bindir() -> Path:
    import glob
    import shutil

    for candidate in (shutil.which("pg_ctl"),
                      *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)):
        if candidate:
            return Path(candidate).resolve().parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1, like ``tests/pg.py``'s but with a
    choice of durability: ``start_postgres(durable=True)`` keeps the stock settings
    (fsync, synchronous_commit and full_page_writes on), as the peers' cluster had."""

    root: Path
    port: int
    user: str
    bindir: Path
    run_as: list[str]
    durable: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    @property
    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return subprocess.run([str(self.bindir / "psql"), "-X", "-qtA", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql],
                              capture_output=True, text=True, check=True, timeout=60).stdout

    def create_database(self, dbname: str) -> str:
        self.psql(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def stop(self) -> None:
        import shutil

        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                        "-m", "fast", "-w", "-t", "30", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_postgres(durable: bool = True, parent: Path | None = None,
                   settings: Sequence[str] = ()) -> PostgresCluster:
    """initdb + pg_ctl start in a temp dir (under ``parent``, default the system's);
    as root the cluster runs as the ``postgres`` user. ``durable=False`` adds the
    test suite's fsync/synchronous_commit/full_page_writes off; ``settings`` more
    ``name=value`` server settings."""
    import pwd
    import shutil
    import tempfile

    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="agentos-bench-pg-", dir=parent))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if run_as else pwd.getpwuid(os.geteuid()).pw_name
    cluster = PostgresCluster(root, free_port(), user, bindir, run_as, durable)
    try:
        # --no-sync: only initdb's own files are not flushed; the server runs as configured
        subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(cluster.data), "-U", user,
                        "--auth=trust", "--encoding=UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        options = (f"-c listen_addresses=127.0.0.1 -c port={cluster.port} "
                   f"-c unix_socket_directories={root}")
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {setting}" for setting in settings)
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(cluster.data),
                        "-l", str(root / "log"), "-o", options, "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1 and a free port, persistence off (no RDB,
    no AOF, as the peers ran it), in the foreground so it is stopped by its own pid."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = subprocess.run(["sh", "-c", "command -v redis-server"], capture_output=True,
                                text=True, check=False).stdout.strip()
        if not binary:
            raise RuntimeError("redis-server is not installed "
                               "(apt-get update && apt-get install -y redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING in {timeout:.0f} s")

    def version(self) -> str:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             check=False).stdout
        return next((w.removeprefix("v=") for w in out.split() if w.startswith("v=")), out)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


BACKENDS = ("sqlite", "postgres")


def backend_list(text: str) -> list[str]:
    """``--backends``: a comma-separated list of sqlite and postgres."""
    found = [b.strip() for b in text.split(",") if b.strip()]
    unknown = set(found) - set(BACKENDS)
    if unknown or not found:
        raise argparse.ArgumentTypeError(
            f"unknown backends: {', '.join(sorted(unknown)) or '(none)'} (sqlite, postgres)")
    return found


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by its docstring's first paragraph, with
    the options every benchmark takes: ``--backends`` and ``--json``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", type=backend_list,
                        help="sqlite, postgres or both (default both)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run_bench(parse_args: Callable[[Sequence[str]], argparse.Namespace],
              report: Callable[[argparse.Namespace, Sequence[str]], dict[str, Any]],
              render: Callable[[dict[str, Any]], str], argv: Sequence[str]) -> None:
    """A benchmark's main: its figures (``report``, told the arguments it ran with) as a
    table for people, or with ``--json`` one JSON object."""
    args = parse_args(argv)
    data = report(args, argv)
    print(json.dumps(data, indent=2) if args.json else render(data))
