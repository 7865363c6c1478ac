"""A throwaway PostgreSQL cluster for tests: initdb and pg_ctl from Debian's packages, on a free port of
127.0.0.1, in a temporary directory; run as the `postgres` user when the tests run as root (PostgreSQL
refuses to run as root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import closing
from itertools import count
from pathlib import Path

USER, DATABASE = "dagster", "forex"


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: install PostgreSQL (`apt-get install postgresql`; .ci/run does)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="forex_pg_", dir="/tmp"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self._as = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}\n{log}")

    def start(self) -> PostgresCluster:
        self._run(_binary("initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C")
        self.resume()
        self._run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)
        return self

    def pause(self) -> None:
        """Stop the server, keeping its data (a database that goes away in the middle of a run)."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server on its data and port (after :meth:`pause`)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    _databases = count()

    def new_database(self, prefix: str) -> str:
        """A new, empty database, as a URL without a password (as docker-compose gives it)."""
        name = f"{prefix}_{next(self._databases)}"
        self._run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self.pause()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def environment(self) -> dict[str, str]:
        """What deploy/dagster.yaml reads (trust authentication: the password is not checked)."""
        return {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_DB": DATABASE,
            "DAGSTER_POSTGRES_USER": USER,
            "DAGSTER_POSTGRES_PASSWORD": "not-checked",
        }

    def query(self, sql: str) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.port, dbname=DATABASE, user=USER) as connection:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()


def query(url: str, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the database of ``url`` (a psycopg2 connection of its own)."""
    import psycopg2
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    with (
        closing(
            psycopg2.connect(host=parsed.host, port=parsed.port, dbname=parsed.database, user=parsed.username)
        ) as db,
        db,
        db.cursor() as cursor,
    ):
        cursor.execute(sql)
        return cursor.fetchall()
