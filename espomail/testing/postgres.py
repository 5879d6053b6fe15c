"""A private, throw-away PostgreSQL server for tests and benchmarks.

``initdb`` in a temporary directory, then ``pg_ctl start`` listening on 127.0.0.1 and a free
port, its unix socket in that directory too, with a superuser and a random password
(scram-sha-256). Durability is off (fsync, synchronous_commit, full_page_writes): a test
server needs none. ``stop()`` is ``pg_ctl stop -m immediate``. It never touches a system
service or cluster.

The binaries come from Debian's ``postgresql`` package (/usr/lib/postgresql/<version>/bin,
the newest; scripts/setup.sh installs it), or ESPOMAIL_PG_BIN, or ``initdb`` on PATH.
initdb and the server refuse to run as root: as root they run as the ``postgres`` user (or
``nobody``), which then owns the temporary directory.

``create_database(name, template=...)`` gives a test a fresh copy of a prepared template
(CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY over one kept admin connection: a median
of 46 ms for espomail's 27 tables and 67 indexes on this 2-core machine, where the ``createdb``
program takes 73 ms, most of it starting and logging in).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from espomail.testing.dovecot import free_port

SUPERUSER = "espomail"
UNPRIVILEGED_USERS = ("postgres", "nobody")
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class PostgresMissing(RuntimeError):
    """No PostgreSQL binaries found; the message says what to install."""


def find_bin_dir() -> Path:
    """The directory of initdb, pg_ctl, createdb and dropdb."""
    if os.environ.get("ESPOMAIL_PG_BIN"):
        return Path(os.environ["ESPOMAIL_PG_BIN"])
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresMissing(
        "PostgreSQL is not installed (no initdb); install the Debian package postgresql "
        "(scripts/test.sh does it for you) or set ESPOMAIL_PG_BIN"
    )


def _version_key(initdb: Path) -> tuple[int, ...]:
    version = initdb.parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class Postgres:
    """One private PostgreSQL instance. Use as a context manager or call start()/stop()."""

    def __init__(self, base: Path | None = None) -> None:
        self._own_base = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="espomail-postgres-"))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(18)
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self._bin: Path | None = None
        self._running = False
        self._admin_connection = None
        self._admin_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._bin = find_bin_dir()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.base / "pwfile"
        password_file.write_text(self.password + "\n")
        os.chmod(password_file, 0o600)
        self._give_to_server_user()
        self._run(
            "initdb",
            ["-D", str(self.data), "-U", self.user, f"--pwfile={password_file}", "--auth=scram-sha-256"]
            + ["--encoding=UTF8", "--locale=C", "--no-sync"],
        )
        password_file.unlink()
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.socket_dir}'"}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# private test instance written by espomail.testing.postgres\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._run("pg_ctl", ["start", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.base / "postgres.log")])
        self._running = True

    def stop(self) -> None:
        if self._admin_connection is not None:
            self._admin_connection.close()
            self._admin_connection = None
        if self._running:
            self._run("pg_ctl", ["stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30"], check=False)
            self._running = False
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """``postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME``."""
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template`` when given; it must have no connection open).
        Returns its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            if self._connection().info.server_version >= 150000:
                # PostgreSQL 15 copies through the WAL by default; with fsync off, copying the
                # files is 2-3 times faster for espomail's schema (and the only way before 15).
                statement += sql.SQL(" STRATEGY FILE_COPY")
        self._admin(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, closing its connections first."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- internals ---------------------------------------------------------------------
    def _admin(self, statement: sql.Composable) -> None:
        """Run a statement on the kept admin connection to the ``postgres`` database."""
        with self._admin_lock:
            self._connection().execute(statement)

    def _connection(self) -> psycopg.Connection:
        if self._admin_connection is None or self._admin_connection.closed:
            self._admin_connection = psycopg.connect(self.url(), autocommit=True, connect_timeout=10)
        return self._admin_connection

    def _run(self, program: str, args: list[str], check: bool = True) -> None:
        assert self._bin is not None
        with open(self.base / f"{program}.out", "ab") as out:
            done = subprocess.run(
                [str(self._bin / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,  # the server keeps pg_ctl's output open: a file, never a pipe
                stderr=out,
                cwd=self.base,
                check=False,
                timeout=120,
                **_run_as(),
            )
        if check and done.returncode != 0:
            log = self.base / "postgres.log"
            details = (self.base / f"{program}.out").read_text(errors="replace")
            details += log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{program} {args[0]} failed: {details.strip()[-800:]}")

    def _give_to_server_user(self) -> None:
        ids = _run_as()
        if not ids:
            return
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, ids["user"], ids["group"])


def _run_as() -> dict:
    """initdb and postgres refuse root: as root they run as an unprivileged user."""
    if os.geteuid() != 0:
        return {}
    for name in UNPRIVILEGED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise PostgresMissing(f"running as root, and none of the users {UNPRIVILEGED_USERS} exists to run PostgreSQL")
