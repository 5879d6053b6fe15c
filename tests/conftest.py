"""Fixtures shared by every test: isolation, the espomail command, Dovecot, SMTP, messages.

- Every test gets its own data directory and database; no ESPOMAIL_* variable leaks in.
- ``espomail`` runs the real command in-process (``espomail("user", "list", "--json")``)
  and returns exit code, stdout and stderr; ``espomail_process`` runs it as a subprocess.
- ``dovecot`` is one private Dovecot per test session, ``cyrus`` one private Cyrus IMAP;
  a test that takes ``imap_server`` runs on each (ids ``[dovecot]`` and ``[cyrus]``), the
  others on Dovecot. ``mailbox()`` makes a fresh IMAP user on the test's server, so tests
  never see each other's mail; ``group_account()`` an account on it.
- ``smtp`` is a recording aiosmtpd server on 127.0.0.1.
- ``postgres`` is one private PostgreSQL per test session (``postgres.url(db)``,
  ``postgres.create_database(name, template=...)``).

Both engines: ``ESPOMAIL_TEST_ENGINE=postgresql`` (``scripts/test.sh`` runs the suite once
with SQLite, then once so) points every test's ESPOMAIL_DB at a fresh PostgreSQL database,
a copy of a template migrated once per session. Tests that do not depend on the store's
engine (ENGINE_INDEPENDENT: the parser, OAuth, the test servers, the PostgreSQL-specific
tests themselves) run in the SQLite run only. ``db`` reads the test's store whatever its
engine (``db.value(sql)``, ``db.rows(sql)``, ``db.dump()``), instead of opening the SQLite
file.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from espomail.testing.cyrus import Cyrus
from espomail.testing.dovecot import Dovecot
from espomail.testing.messages import build_message
from espomail.testing.postgres import Postgres
from espomail.testing.smtp import RecordingSMTP

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
ENGINE = os.environ.get("ESPOMAIL_TEST_ENGINE", "sqlite").lower()
ON_POSTGRES = ENGINE in ("postgresql", "postgres")
if ENGINE not in ("sqlite", "postgresql", "postgres"):
    raise pytest.UsageError(f"ESPOMAIL_TEST_ENGINE={ENGINE!r}: use sqlite or postgresql")
# Tests that do not depend on the engine of the store (nothing to learn from a second run).
ENGINE_INDEPENDENT = (
    "mail/",
    "oauth/",
    "testing/",
    "test_config.py",
    "test_layers.py",
    "store/test_migrations.py",  # SQLite files by path; tests/store/test_postgres.py has PostgreSQL's
    "store/test_postgres.py",
    "store/test_copy.py",
    "cli/test_hosts.py",
)
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if not ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="engine-independent: runs in the SQLite run")
    for item in items:
        relative = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
        if relative.startswith(ENGINE_INDEPENDENT) or item.get_closest_marker("engine_independent"):
            item.add_marker(skip)


@dataclasses.dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        out, err = self.stdout[:2000], self.stderr[:2000]
        return f"Result(exit_code={self.exit_code}, stdout={out!r}, stderr={err!r})"


_databases = itertools.count(1)


class DatabasePool:
    """Copies of the template made ahead and dropped behind by one background thread, so that
    a test waits for neither (CREATE DATABASE ... TEMPLATE costs 0.1-0.3 s on this machine)."""

    AHEAD = 2

    def __init__(self, server, template: str) -> None:
        self.server, self.template = server, template
        self._ready: queue.Queue[str] = queue.Queue()
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="database-pool", daemon=True)
        self._thread.start()
        for _ in range(self.AHEAD):
            self._work.put(("create", self._name()))

    def take(self) -> str:
        """The name of a fresh copy of the template (the next one is started at once)."""
        self._work.put(("create", self._name()))
        name = self._ready.get(timeout=120)
        if isinstance(name, BaseException):
            raise name
        return name

    def give_back(self, name: str) -> None:
        self._work.put(("drop", name))

    def close(self) -> None:
        self._work.put(None)
        self._thread.join(timeout=60)

    def _name(self) -> str:
        return f"espomail_test_{os.getpid()}_{next(_databases)}"

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            action, name = item
            try:
                if action == "create":
                    self.server.create_database(name, template=self.template)
                    self._ready.put(name)
                else:
                    self.server.drop_database(name)
            except Exception as exc:  # noqa: BLE001 - handed to the test that waits for it
                if action == "create":
                    self._ready.put(exc)


@pytest.fixture(scope="session")
def postgres_template(request):
    """(server, template name): a database migrated once, copied for every test."""
    from espomail.store.db import open_store

    server = request.getfixturevalue("postgres")
    name = "espomail_template"
    server.drop_database(name)
    open_store(server.create_database(name)).close()
    return server, name


@pytest.fixture(scope="session")
def database_pool(postgres_template):
    pool = DatabasePool(*postgres_template)
    yield pool
    pool.close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, request):
    """A private home, data directory and database for every test."""
    for name in list(os.environ):
        if name.startswith("ESPOMAIL_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", "crm.example.com")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "espomail.testing.keyring_file.FileKeyring")
    monkeypatch.setenv("ESPOMAIL_TEST_KEYRING", str(tmp_path / "keyring.json"))
    if not ON_POSTGRES or request.node.get_closest_marker("skip"):
        monkeypatch.setenv("ESPOMAIL_DB", str(tmp_path / "espomail.db"))
        yield tmp_path
        return
    pool = request.getfixturevalue("database_pool")
    name = pool.take()
    monkeypatch.setenv("ESPOMAIL_DB", pool.server.url(name))
    monkeypatch.setenv("ESPOMAIL_DATA_DIR", str(tmp_path))  # logs and locks where the SQLite file would be
    yield tmp_path
    pool.give_back(name)


class Database:
    """The test's store, whatever its engine: plain SQL with ``?`` placeholders. The store is
    the one the test started with (a test's ``monkeypatch.undo()`` does not move it)."""

    engine = "postgresql" if ON_POSTGRES else "sqlite"

    def __init__(self, target: str) -> None:
        self.target = target

    def _open(self):
        from espomail.store.db import open_store

        return open_store(self.target, migrate=False)

    def rows(self, sql: str, params=()) -> list[dict]:
        store = self._open()
        try:
            return [dict(row) for row in store.rows(sql, params)]
        finally:
            store.close()

    def value(self, sql: str, params=()):
        store = self._open()
        try:
            return store.value(sql, params)
        finally:
            store.close()

    def execute(self, sql: str, params=()) -> int:
        store = self._open()
        try:
            with store.atomic():
                return store.execute(sql, params)
        finally:
            store.close()

    def exists(self) -> bool:
        """Whether the store was made (a PostgreSQL test's database always is: a template copy)."""
        return ON_POSTGRES or Path(self.target).exists()

    def dump(self) -> dict[str, list[dict]] | None:
        """Every row of every table (the store's tables, in a stable order); None before the store exists."""
        from espomail.store.migrations import table_names

        if not self.exists():
            return None
        store = self._open()
        try:
            return {
                table: [dict(r) for r in store.rows(f"SELECT * FROM {table} ORDER BY 1, 2")] for table in table_names()
            }
        finally:
            store.close()


@pytest.fixture
def db(isolated) -> Database:
    """The test's store (SQLite or PostgreSQL) for checks in SQL."""
    return Database(os.environ["ESPOMAIL_DB"])


@pytest.fixture
def db_path(isolated) -> Path:
    return isolated / "espomail.db"


@pytest.fixture
def espomail():
    """Run ``espomail ARGS...`` in-process; returns a Result."""
    from espomail.cli import main

    def run(*args: str, input: str | bytes | None = None) -> Result:
        runner = CliRunner()
        with runner.isolation(input=input) as (out, err, _):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            stdout = out.getvalue().decode("utf-8", "replace")
            stderr = err.getvalue().decode("utf-8", "replace")
        return Result(code, stdout, stderr)

    return run


@pytest.fixture
def espomail_process():
    """Run ``espomail ARGS...`` as a real subprocess (for kill -9, locks, the console script)."""

    def run(*args: str, input: str | None = None, timeout: float = 300, env=None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "espomail", *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def cyrus():
    with Cyrus() as server:
        yield server


IMAP_SERVERS = ("dovecot", "cyrus")


@pytest.fixture(params=IMAP_SERVERS)
def imap_server(request):
    """Each IMAP server in turn: a test taking this fixture runs once on Dovecot, once on Cyrus."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def imap(request):
    """The IMAP server of this test: ``imap_server``'s when the test takes it, else Dovecot."""
    return request.getfixturevalue("imap_server" if "imap_server" in request.fixturenames else "dovecot")


_mailbox_numbers = itertools.count(1)


@pytest.fixture
def mailbox(imap):
    """Make a fresh IMAP user on the test's server: ``name = mailbox()``."""

    def make(prefix: str = "box") -> str:
        name = f"{prefix}{next(_mailbox_numbers)}"
        imap.add_user(name)
        return name

    return make


@pytest.fixture(scope="session")
def postgres():
    with Postgres() as server:
        yield server


@pytest.fixture
def smtp():
    with RecordingSMTP() as server:
        yield server


@pytest.fixture
def message():
    """``message(subject=..., from_=..., ...)`` builds raw message bytes."""
    return build_message


@pytest.fixture
def group_account(espomail, imap, mailbox):
    """Create a group account on a fresh mailbox of the test's server; returns (account name, IMAP user)."""

    def make(name: str = "support", *extra: str, address: str | None = None) -> tuple[str, str]:
        user = mailbox(name)
        result = espomail(
            "account",
            "add-group",
            name,
            "--address",
            address or f"{name}@example.com",
            "--host",
            imap.host,
            "--port",
            imap.port,
            "--security",
            "none",
            "--username",
            user,
            "--password-env",
            "TEST_IMAP_PASSWORD",
            "--fetch-since",
            "2000-01-01",
            *extra,
        )
        assert result.exit_code == 0, result
        return name, user

    return make


@pytest.fixture(autouse=True)
def imap_password(monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "secret")
