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
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
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


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private home, data directory and database for every test."""
    for name in list(os.environ):
        if name.startswith("ESPOMAIL_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("ESPOMAIL_DB", str(tmp_path / "espomail.db"))
    monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", "crm.example.com")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "espomail.testing.keyring_file.FileKeyring")
    monkeypatch.setenv("ESPOMAIL_TEST_KEYRING", str(tmp_path / "keyring.json"))
    return tmp_path


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
