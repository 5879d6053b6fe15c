"""The machine failing under espomail (issue 12 item 10): a full disk, a deleted, truncated or
damaged pack file, a store locked by another writer. One ``Error:`` line that says what to
do, never a traceback, never cut-off content; nothing lost."""

import errno
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espomail.testing.messages import build_message

# The SQLite file and its packs failing (a full disk, damaged packs, another writer's lock):
# PostgreSQL keeps raw sources in the database and has no file lock; the PostgreSQL run skips these.
SQLITE_FILES = pytest.mark.engine_independent


def count(db_path, sql="SELECT COUNT(*) FROM emails"):
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchone()[0]


def no_traceback(result):
    text = result.stdout + result.stderr
    return "Traceback" not in text and "Logging error" not in text and "unexpected" not in text


def one_error_line(result):
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith('{"error"')]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result
    return lines[0]


# -- a full disk -----------------------------------------------------------------------------------


@SQLITE_FILES
def test_disk_full_writing_a_pack_is_one_line_and_nothing_is_lost(
    espomail, dovecot, group_account, db_path, monkeypatch, isolated
):
    _, box = group_account("support")
    dovecot.append(box, [build_message(subject=f"m{i}") for i in range(5)])
    real = os.fdatasync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", full)
    result = espomail("-v", "fetch")
    assert result.exit_code == 1 and no_traceback(result), result
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    raw_dir = isolated / "espomail-raw"
    assert line.startswith(f"Error: account 'support': disk full (ENOSPC) writing {raw_dir}/pack-")
    assert line.endswith(": free space and rerun; nothing was lost")
    assert count(db_path) == 0
    monkeypatch.setattr(os, "fdatasync", real)
    assert espomail("fetch").exit_code == 0  # no backoff: the disk was at fault, not the account
    assert count(db_path) == 5


@SQLITE_FILES
def test_disk_full_in_the_database_is_one_line_and_nothing_is_lost(
    espomail, dovecot, group_account, db_path, monkeypatch
):
    from espomail.store import db

    _, box = group_account("support")
    assert espomail("fetch").exit_code == 0
    dovecot.append(box, [build_message(subject=f"m{i}", body="x" * 5000) for i in range(40)])
    real = db.connect

    def small(path):
        conn = real(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        return conn

    monkeypatch.setattr(db, "connect", small)
    result = espomail("fetch")
    assert result.exit_code == 1 and no_traceback(result), result
    line = one_error_line(result)
    assert line == (
        f"Error: account 'support': disk full (ENOSPC) writing the store {db_path}: free space and rerun; "
        "nothing was lost"
    )
    other = espomail("team", "add", "sales" * 2000)
    assert other.exit_code in (1, 2)
    added = espomail("user", "add", "bob", "--email", "bob@example.com", "--name", "B" * 150)
    if added.exit_code:  # the page it needed was not there: one line, exit 1
        assert added.exit_code == 1 and no_traceback(added)
        assert one_error_line(added).startswith("Error: disk full (ENOSPC) writing the store")
    monkeypatch.setattr(db, "connect", real)
    again = espomail("fetch", "--json")
    assert again.exit_code == 0, again
    assert count(db_path) == 40


class FullDisk:
    """A log file on a full disk: every write fails with ENOSPC."""

    def __init__(self, path):
        self._file = open(path, "a")  # noqa: SIM115 - closed by close()

    def fileno(self):
        return self._file.fileno()

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self._file.close()


def test_a_log_on_a_full_disk_is_dropped_quietly(espomail, dovecot, group_account, monkeypatch):
    """It printed four tracebacks ('--- Logging error ---', 107 lines) before the real error."""
    import logging.handlers

    monkeypatch.setattr(logging.handlers.WatchedFileHandler, "_open", lambda self: FullDisk(self.baseFilename))
    _, box = group_account("support")
    dovecot.append(box, build_message())
    assert (espomail("fetch").exit_code, espomail("fetch").stderr) == (0, "")
    broken = espomail("email", "show", "999")
    assert broken.exit_code == 3 and broken.stderr == "Error: no email with id 999; see 'espomail email list'\n"


def test_the_log_handlers_never_print_their_own_errors(tmp_path, capsys, monkeypatch):
    import logging
    import logging.handlers

    from espomail.cli.app import setup_logging
    from espomail.config import load_settings

    monkeypatch.setattr(logging.handlers.WatchedFileHandler, "_open", lambda self: FullDisk(self.baseFilename))
    monkeypatch.setattr(logging, "raiseExceptions", True)
    setup_logging(load_settings(env={"XDG_DATA_HOME": str(tmp_path)}), verbose=1)
    logging.getLogger("espomail.test").error("the real error")
    err = capsys.readouterr().err
    assert err == "ERROR: the real error\n"


# -- pack files --------------------------------------------------------------------------------------


@pytest.fixture
def stored(espomail, dovecot, group_account, isolated):
    """One fetched email; returns (its id, its pack file)."""
    _, box = group_account("support")
    dovecot.append(box, build_message(subject="keep me", body="the body\n" * 50))
    assert espomail("fetch").exit_code == 0
    [email] = espomail("email", "list", "--json").json
    [pack] = list((isolated / "espomail-raw").glob("pack-*.dat"))
    return email["id"], pack


VIEWS = [("show",), ("show", "--raw"), ("show", "--json"), ("explain",)]


@SQLITE_FILES
@pytest.mark.parametrize("view", VIEWS, ids=" ".join)
def test_a_deleted_pack_is_a_clear_error(espomail, stored, view):
    email_id, pack = stored
    pack.unlink()
    result = espomail("email", view[0], email_id, *view[1:])
    if view[0] == "explain":  # explain does not need the source
        assert result.exit_code == 0
        return
    assert result.exit_code == 1 and no_traceback(result) and result.stdout == ""
    line = one_error_line(result)
    assert line.startswith(f"Error: email {email_id}: its raw source is missing: the pack file {pack} does not exist")
    assert "restore" in line


@SQLITE_FILES
@pytest.mark.parametrize("view", VIEWS[:3], ids=" ".join)
def test_a_truncated_pack_is_detected_not_returned_cut_off(espomail, stored, view):
    email_id, pack = stored
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) // 2])
    result = espomail("email", view[0], email_id, *view[1:])
    assert result.exit_code == 1 and result.stdout == "" and no_traceback(result)
    assert "its raw source is cut off" in one_error_line(result)


@SQLITE_FILES
@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_a_damaged_pack_fails_its_sha256_check(espomail, stored, where):
    email_id, pack = stored
    data = bytearray(pack.read_bytes())
    index = int(len(data) * where) if where >= 0 else len(data) - 1
    data[index] ^= 0x20
    pack.write_bytes(bytes(data))
    result = espomail("email", "show", email_id, "--raw")
    assert result.exit_code == 1 and result.stdout == ""
    assert "no longer match their SHA-256" in one_error_line(result)


@SQLITE_FILES
def test_reprocessing_a_damaged_email_fails_it_alone(espomail, stored, dovecot, db_path):
    email_id, pack = stored
    pack.write_bytes(b"\0" * pack.stat().st_size)
    result = espomail("email", "reprocess", email_id, "--json")
    assert result.exit_code in (0, 1) and no_traceback(result), result


# -- a store locked by another writer ------------------------------------------------------------------


@pytest.fixture
def locked_store(db_path, espomail, monkeypatch):
    from espomail.store import db

    assert espomail("init").exit_code == 0
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.3)
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(db_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    holder.kill()
    holder.wait()


@pytest.mark.parametrize(
    "args", [("team", "add", "sales"), ("user", "add", "bob", "--email", "b@example.com")], ids=" ".join
)
@SQLITE_FILES
def test_a_store_locked_longer_than_the_busy_timeout_names_the_holder(espomail, locked_store, args):
    started = time.monotonic()
    result = espomail(*args)
    assert result.exit_code == 1 and no_traceback(result), result
    line = one_error_line(result)
    assert "is locked by another process" in line and "for longer than the busy timeout (0.3 s)" in line
    if Path("/proc/locks").exists():
        assert f"(pid {locked_store.pid}: " in line
    assert line.endswith("wait for it to finish, then rerun")
    assert time.monotonic() - started < 30


@SQLITE_FILES
def test_a_fetch_against_a_locked_store_fails_each_account_with_one_line(
    espomail, dovecot, group_account, db_path, monkeypatch
):
    from espomail.store import db

    _, box = group_account("support")
    dovecot.append(box, build_message())
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\nprint('ok',flush=True)\ntime.sleep(60)", str(db_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        result = espomail("fetch")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1 and no_traceback(result), result
    assert "is locked by another process" in one_error_line(result)
    again = espomail("fetch", "--json")
    assert again.exit_code == 0, again
    assert count(db_path) == 1, again


# -- a real full file system (a small tmpfs; root only) ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs; ``grow()`` gives it room again. Skipped where mounting is not allowed."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(where)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the in-process ENOSPC tests cover it")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=64m", str(where)], check=True)

    yield where, grow
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@SQLITE_FILES
@pytest.mark.slow
def test_a_real_full_disk_gives_one_line_per_failure_and_loses_nothing(
    espomail, espomail_process, dovecot, mailbox, small_disk, monkeypatch
):
    where, grow = small_disk
    db = where / "espomail.db"
    monkeypatch.setenv("ESPOMAIL_DB", str(db))
    assert espomail("init").exit_code == 0
    user = mailbox("full")
    assert espomail(
        "account", "add-group", "full", "--address", "full@example.com", "--host", dovecot.host, "--port",
        dovecot.port, "--security", "none", "--username", user, "--password-env", "TEST_IMAP_PASSWORD",
        "--fetch-since", "2000-01-01",
    ).exit_code == 0  # fmt: skip
    total = 40
    dovecot.append(user, [build_message(subject=f"big {i}", body=f"{i:06d} " * 8000) for i in range(total)])
    for verbose in ([], ["-v"]):  # -v: the log lines on stderr too (the log file is on the full disk)
        result = espomail_process(*verbose, "fetch")
        assert result.exit_code == 1 and no_traceback(result), result
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert errors and all("disk full (ENOSPC) writing " in line for line in errors), result.stderr
        assert all(line.startswith(("Error:", "INFO:", "WARNING:", "ERROR:")) for line in result.stderr.splitlines())
    stored = count(db)
    assert stored < total
    grow()
    again = espomail_process("fetch")
    assert again.exit_code == 0, again
    assert count(db) == total
    assert count(db, "SELECT COUNT(DISTINCT message_id) FROM emails") == total
    assert count(db, "SELECT COUNT(*) FROM emails WHERE state = 'processed'") == total
