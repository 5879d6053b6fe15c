"""What held when issue 12 was tried, kept so by tests: plain overlapping fetches store each
message once; the password never shows in the process list, the store, the raw packs, the log
or any output of a whole fetch; the files espomail makes are the owner's only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espomail.testing.messages import build_message

PASSWORD = "Pw-7Qz!held-only-in-the-keyring"  # a string found nowhere else


def _account_with_private_password(espomail, dovecot, mailbox, name: str) -> str:
    user = mailbox(name)
    dovecot.add_user(user, PASSWORD)
    added = espomail(
        "account", "add-group", name, "--address", f"{name}@example.com", "--host", dovecot.host,
        "--port", dovecot.port, "--security", "none", "--username", user, "--password-stdin",
        "--fetch-since", "2000-01-01", input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added
    return user


def _stored_message_ids(espomail) -> list[str]:
    listed = espomail("email", "list", "--all", "--nl")
    assert listed.exit_code == 0, listed
    return [json.loads(line)["message_id"] for line in listed.stdout.splitlines() if line.strip()]


def _command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                pass
    return lines


def test_overlapping_fetches_store_each_message_once(espomail, dovecot, mailbox):
    """Three `espomail fetch` processes started together on one mailbox (as cron and a
    manual run may): every message once, whichever process stored it."""
    user = _account_with_private_password(espomail, dovecot, mailbox, "support")
    total = 300
    dovecot.append(user, [build_message(subject=f"overlap {i}", body="y" * 800) for i in range(total)])
    env = {**os.environ, "ESPOMAIL_BATCH_SIZE": "20"}
    runs = [
        subprocess.Popen([sys.executable, "-m", "espomail", "fetch"], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    ids = _stored_message_ids(espomail)
    assert len(ids) == total
    assert len(set(ids)) == total


def test_the_password_shows_nowhere_during_and_after_a_fetch(espomail, dovecot, mailbox, isolated, db):
    """While a fetch runs (and its parse worker), no process's command line holds the
    password; afterwards neither the store, the raw packs, the log nor any output does."""
    user = _account_with_private_password(espomail, dovecot, mailbox, "support")
    dovecot.append(user, [build_message(subject=f"ps {i}", body="z" * 5000) for i in range(400)])
    log = isolated / "espomail.log"
    env = {**os.environ, "ESPOMAIL_BATCH_SIZE": "10", "ESPOMAIL_LOG_FILE": str(log), "ESPOMAIL_LOG_LEVEL": "debug"}
    fetch = subprocess.Popen(
        [sys.executable, "-m", "espomail", "-vv", "fetch", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    seen = []
    while fetch.poll() is None:
        seen.extend(_command_lines())
        time.sleep(0.02)
    stdout, stderr = fetch.communicate()
    assert fetch.returncode == 0, stderr
    secret = PASSWORD.encode()
    assert not [line for line in seen if secret in line]
    assert secret not in stdout and secret not in stderr
    for command in (("status", "--json"), ("account", "show", "support", "--json"), ("account", "test", "support")):
        result = espomail(*command)
        assert PASSWORD not in result.stdout + result.stderr, command
    files = [path for path in isolated.rglob("*") if path.is_file() and path.name != "keyring.json"]
    assert log in files
    assert not [path for path in files if secret in path.read_bytes()]
    assert PASSWORD not in repr(db.dump())  # the store's rows, on either engine


@pytest.mark.engine_independent  # the file modes of a SQLite store and its packs
def test_the_store_its_packs_and_the_log_are_the_owners_only(espomail, dovecot, mailbox, isolated, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_LOG_FILE", str(isolated / "logs" / "espomail.log"))
    user = _account_with_private_password(espomail, dovecot, mailbox, "support")
    dovecot.append(user, [build_message(subject=f"mode {i}") for i in range(5)])
    assert espomail("fetch").exit_code == 0
    made = [isolated / "espomail.db", isolated / "logs" / "espomail.log"]
    packs = [path for path in isolated.rglob("*") if "espomail-raw" in path.parts]
    assert any(path.is_file() for path in packs)
    for path in made + packs:
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}, wanted {oct(wanted)}"
