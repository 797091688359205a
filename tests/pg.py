"""A throwaway PostgreSQL cluster for the test run (or the one in AGENTOS_TEST_POSTGRES_URL).

PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` user; it listens on 127.0.0.1 only and is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.ports import free_port


def _bindir() -> Path:
    for candidate in (shutil.which("pg_ctl"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                                                       reverse=True)):
        if candidate:
            return Path(candidate).resolve().parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")


class Cluster:
    """A running PostgreSQL server and the admin URL to it."""

    def __init__(self, admin_url: str, stop: callable | None = None) -> None:  # type: ignore[valid-type]
        self.admin_url = admin_url
        self._stop = stop

    def url(self, dbname: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{dbname}"

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._stop:
            self._stop()


def start() -> Cluster:
    if url := os.environ.get("AGENTOS_TEST_POSTGRES_URL"):
        return Cluster(url)
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="agentos-pg-"))
    data = root / "data"
    as_root = os.geteuid() == 0
    run_as: list[str] = []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if as_root else pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", user,
                    "--auth=trust", "--encoding=UTF8", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    # durability is not under test here (the tests kill clients, never this
    # server), so skip fsync to keep the suite fast
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=300")
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                    "-o", options, "-w", "-t", "60", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        # hundreds of test databases are hundreds of thousands of files: removing them
        # can outlast the last test's timeout on a loaded machine, so a detached
        # process removes them while pytest ends
        # (a shell that backgrounds it and exits: pytest is left no child to wait for,
        # where a Popen it never waited on was a ResourceWarning, an error here)
        subprocess.run(["sh", "-c", 'rm -rf "$1" >/dev/null 2>&1 &', "sh", str(root)],
                       start_new_session=True, check=False)

    admin = f"postgresql://{user}@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(admin).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                stop()
                raise
            time.sleep(0.2)
    return Cluster(admin, stop)
