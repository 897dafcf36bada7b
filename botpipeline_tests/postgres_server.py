"""A private PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder, the
server on a free loopback port, removed afterwards.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(Debian's package creates it) and its commands run through ``runuser``. Where no PostgreSQL
binaries are found the fixture skips, naming what it looked for; with
``BOTPIPELINE_REQUIRE_SERVERS=1`` (CI) it fails instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_SERVERS = "BOTPIPELINE_REQUIRE_SERVERS"


def servers_required() -> bool:
    return os.environ.get(REQUIRE_SERVERS, "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it when the servers are required (CI)."""
    if servers_required():
        pytest.fail(f"{reason} ({REQUIRE_SERVERS}=1)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                         else 0, reverse=True):
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return (f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/"
                f"{self.database}")

    def env(self) -> dict[str, str]:
        """The variables ``deploy/cluster/dagster.yaml`` reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_USER": self.user, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_DB": self.database}


@contextmanager
def postgres_server(database: str = "dagster") -> Iterator[PostgresServer]:
    """Start a private cluster; yield how to reach it; stop and delete it afterwards.

    Raises ``RuntimeError`` when PostgreSQL is not installed or cannot run here.
    """
    bindir = find_postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL not found: no pg_ctl/initdb on PATH or under "
                           "/usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to own the "
                               "test cluster (PostgreSQL refuses root)") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="botpipeline-pg-"))
    datadir, log = root / "data", root / "server.log"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    user, password, port = "botpipeline", "botpipeline", free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")

    started = False
    try:
        pwfile = root / "pw"
        pwfile.write_text(password)
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        run(str(bindir / "initdb"), "-D", str(datadir), "-U", user, "--pwfile", str(pwfile),
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=200 -c shared_buffers=64MB")
        run(str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(log), "-o", options,
            "-w", "-t", "60", "start")
        started = True
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password,
                               dbname="postgres")
        try:
            con.autocommit = True
            con.cursor().execute(f'CREATE DATABASE "{database}"')
        finally:
            con.close()
        yield PostgresServer("127.0.0.1", port, user, password, database)
    finally:
        if started:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast",
                            "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL for the module's tests (skipped where PostgreSQL is missing,
    unless BOTPIPELINE_REQUIRE_SERVERS=1)."""
    if find_postgres_bin() is None:
        unavailable("PostgreSQL binaries not found (pg_ctl/initdb on PATH or "
                    "/usr/lib/postgresql/*/bin); install Debian's postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root without a 'postgres' user; PostgreSQL refuses root")
    with postgres_server() as server:
        yield server
