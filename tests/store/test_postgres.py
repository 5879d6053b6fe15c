"""The PostgreSQL store (SPEC 13): URLs, passwords and their errors, the schema, raw sources
in the database, the SQL translation, leases judged by the database, concurrent inserts.

These run in the SQLite run of the suite (they make their own databases on the private
PostgreSQL); the PostgreSQL run runs every other test on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import zlib
from pathlib import Path

import psycopg
import pytest

from espomail.errors import EspomailError
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store.db import open_store
from espomail.store.migrations import M001_INITIAL, MIGRATIONS, postgres_statements
from espomail.store.postgres import RawUploader, insert_raw, note_upload, to_postgres
from espomail.store.urls import is_url, shown
from espomail.testing.messages import build_message

_numbers = itertools.count(1)


@pytest.fixture
def pg(postgres_template):
    """(server, a fresh migrated database's URL, its name)."""
    server, template = postgres_template
    name = f"espomail_pg_{os.getpid()}_{next(_numbers)}"
    url = server.create_database(name, template=template)
    yield server, url, name
    server.drop_database(name)


def without_password(server, dbname: str) -> str:
    return f"postgresql://{server.user}@{server.host}:{server.port}/{dbname}"


def assert_no_password(result, password: str, *more_places: Path) -> None:
    assert password not in result.stdout and password not in result.stderr
    for place in more_places:
        for path in [place] if place.is_file() else place.rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path


# -- URLs are never file names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, url",
    [
        ("postgresql://u@h/db", True),
        ("postgres://u:p@h:5/db", True),
        ("postgresql:///db", True),
        ("postgres:db", True),
        ("mysql://u@h/db", True),
        ("sqlite:///x.db", True),
        ("/var/lib/espomail/espomail.db", False),
        ("espomail.db", False),
        ("./odd:name.db", False),
    ],
)
def test_what_is_a_url(value, url):
    assert is_url(value) is url


def test_an_unreachable_server_is_one_error_and_no_file_named_after_the_url(espomail, isolated, monkeypatch):
    monkeypatch.chdir(isolated)
    before = sorted(p.name for p in isolated.iterdir())
    for url in ("postgresql://bob:Hunter2secret@127.0.0.1:1/espo", "postgres://bob:Hunter2secret@127.0.0.1:1/espo"):
        result = espomail("--db", url, "user", "list")
        assert result.exit_code == 1
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: cannot reach the PostgreSQL server at 127.0.0.1:1 (Connection refused)")
        assert_no_password(result, "Hunter2secret", isolated)
    assert sorted(p.name for p in isolated.iterdir() if p.name != "home") == sorted(b for b in before if b != "home")
    assert not list(isolated.rglob("*.db")) and not list(isolated.rglob("postgres*"))


def test_a_url_espomail_cannot_use_is_one_error(espomail, isolated, monkeypatch):
    monkeypatch.chdir(isolated)
    result = espomail("--db", "mysql://bob:Hunter2secret@db.example.com/crm", "init")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: cannot use the database URL 'mysql://bob@db.example.com/crm': give a PostgreSQL URL "
        "(postgresql://USER@HOST:PORT/DBNAME) or the path of a SQLite file to --db/ESPOMAIL_DB"
    ]
    bad = espomail("--db", "postgresql://bob:Hunter2secret@127.0.0.1/crm?nonsense=1", "user", "list")
    assert bad.exit_code == 1 and "cannot use the database URL" in bad.stderr
    assert_no_password(bad, "Hunter2secret", isolated)
    assert not [p for p in isolated.rglob("*") if "mysql" in p.name or "crm" in p.name]


def test_a_refused_login_names_the_user_never_the_password(espomail, pg, isolated):
    server, _, name = pg
    url = f"postgresql://{server.user}:Wrong-Hunter2@{server.host}:{server.port}/{name}"
    result = espomail("--db", url, "-v", "user", "list")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: the PostgreSQL server at {server.host}:{server.port} refused the login")
    assert f"user '{server.user}'" in line and "password authentication failed" in line
    assert_no_password(result, "Wrong-Hunter2", isolated)
    assert_no_password(result, server.password, isolated)


def test_no_password_given_says_where_to_put_it(espomail, pg, monkeypatch):
    server, _, name = pg
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    result = espomail("--db", without_password(server, name), "user", "list")
    assert result.exit_code == 1
    assert "wants a password" in result.stderr and "~/.pgpass" in result.stderr


def test_a_missing_database_says_how_to_create_it(espomail, pg):
    server, _, _ = pg
    result = espomail("--db", server.url("no_such_db"), "init")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "database 'no_such_db' does not exist" in line and "createdb" in line and "espomail init" in line
    assert server.password not in line


def test_password_from_pgpassword_pgpass_or_a_command(espomail, pg, isolated, monkeypatch):
    server, _, name = pg
    url = without_password(server, name)
    monkeypatch.setenv("PGPASSWORD", server.password)
    assert espomail("--db", url, "team", "add", "red").exit_code == 0
    monkeypatch.delenv("PGPASSWORD")
    pgpass = isolated / "home" / ".pgpass"
    pgpass.write_text(f"{server.host}:{server.port}:{name}:{server.user}:{server.password}\n")
    pgpass.chmod(0o600)
    assert espomail("--db", url, "team", "add", "blue").exit_code == 0
    pgpass.unlink()
    secret = isolated / "db.pass"
    secret.write_text(server.password + "\n")
    command = f"cat {secret}"
    assert espomail("--db", url, "--db-password-cmd", command, "team", "add", "green").exit_code == 0
    monkeypatch.setenv("ESPOMAIL_DB", url)
    monkeypatch.setenv("ESPOMAIL_DB_PASSWORD_CMD", command)
    listed = espomail("team", "list", "--json")
    assert [t["name"] for t in listed.json] == ["blue", "green", "red"]
    failing = espomail("--db-password-cmd", f"echo {server.password}; exit 3", "team", "list")
    assert failing.exit_code == 1 and "database password command" in failing.stderr
    assert_no_password(failing, server.password, isolated / "home")
    cron = espomail("cron").stdout
    assert url in cron and "--db-password-cmd" in cron and server.password not in cron


def test_init_creates_the_schema_in_a_bare_database_then_is_up_to_date(espomail, postgres):
    name = f"espomail_bare_{os.getpid()}"
    postgres.drop_database(name)
    url = postgres.create_database(name)
    try:
        first = espomail("--db", url, "init", "--json")
        assert first.exit_code == 0, first
        assert first.json["created"] is True and first.json["migrations_applied"] == [n for n, _ in MIGRATIONS]
        assert first.json["db_path"] == shown(url) and postgres.password not in first.stdout
        again = espomail("--db", url, "init")
        assert again.exit_code == 0 and again.stderr.startswith("Up to date: store postgresql://")
        with psycopg.connect(url) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert {"emails", "raw_sources", "espomail_migrations", "cases"} <= tables
            conn.execute("UPDATE espomail_migrations SET checksum = checksum + 1")
        changed = espomail("--db", url, "user", "list")
        assert changed.exit_code == 1 and "made by another build of espomail" in changed.stderr
    finally:
        postgres.drop_database(name)


def test_the_sqlite_schema_is_unchanged_and_postgres_renders_it():
    assert zlib.crc32("\n".join(M001_INITIAL).encode()) == 2978802302  # m001 byte for byte as released
    rendered = "\n".join(postgres_statements("m001_initial", M001_INITIAL))
    assert "INTEGER" not in rendered and "BLOB" not in rendered
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in rendered
    assert "uid BIGINT" in rendered and "raw_offset BIGINT" in rendered
    assert "(user_id, in_trash, in_archive, folder_id NULLS FIRST, sort_date NULLS FIRST)" in rendered
    assert "notifications (user_id, id)" in rendered  # NOT NULL columns keep the default order
    assert 'message_id TEXT COLLATE "C" NOT NULL UNIQUE' in rendered


def test_placeholders_are_translated_outside_quotes():
    assert to_postgres("SELECT * FROM t WHERE a = ? AND b LIKE '50%?'") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE '50%%?'"
    )
    assert to_postgres("SELECT 'it''s ?', ? % 2") == "SELECT 'it''s ?', %s %% 2"
    assert to_postgres("SELECT 1") == "SELECT 1"


# -- the store on PostgreSQL -------------------------------------------------------------------


def test_raw_sources_live_in_the_database_and_are_checked_on_read(espomail, pg, isolated, monkeypatch):
    server, url, _ = pg
    monkeypatch.setenv("ESPOMAIL_DB", url)
    raw = build_message(subject="Grüße", body="binary-ish \x00\xff bytes stay as they are\n")
    path = isolated / "one.eml"
    path.write_bytes(raw)
    assert espomail("email", "import", path, "--json").exit_code == 0
    [email] = espomail("email", "list", "--json").json
    assert espomail("email", "show", email["id"], "--raw").exit_code == 0
    with psycopg.connect(url) as conn:
        (data,) = conn.execute("SELECT data FROM raw_sources").fetchone()
        assert bytes(data) == raw
        pack, offset = conn.execute("SELECT raw_pack, raw_offset FROM emails").fetchone()
        assert pack == "db"
        conn.execute("UPDATE raw_sources SET data = %s WHERE id = %s", (raw.replace(b"Gr", b"gR"), offset))
    damaged = espomail("email", "show", email["id"], "--raw")
    assert damaged.exit_code == 1 and "no longer matches its SHA-256" in damaged.stderr
    assert not list(Path(isolated).rglob("pack-*.dat"))  # nothing in files on this host


def test_a_fetch_of_several_batches_uploads_its_sources_ahead_and_keeps_none_it_does_not_need(
    espomail, pg, group_account, dovecot, monkeypatch
):
    """A fetch of several batches writes each batch's sources on a second connection before
    the batch is stored (store.postgres.RawUploader); the copies this account had already
    are deleted again by the storing transaction, so no source is left that no row names."""
    _, url, _ = pg
    monkeypatch.setenv("ESPOMAIL_DB", url)
    monkeypatch.setenv("ESPOMAIL_BATCH_SIZE", "10")
    uploaded: list[int] = []
    upload = RawUploader._upload
    monkeypatch.setattr(
        RawUploader, "_upload", lambda self, places: uploaded.append(len(places)) or upload(self, places)
    )
    _, user = group_account("ahead")
    messages = [build_message(subject=f"ahead {i}", body=f"message {i}\n") for i in range(45)]
    dovecot.append(user, messages + messages[:5])  # the same five again, in a later batch

    result = espomail("fetch", "--json")

    assert result.exit_code == 0, result
    assert (result.json["new"], result.json["duplicates"]) == (45, 5)
    assert sum(uploaded) == 50 and len(uploaded) == 5
    digests = {hashlib.sha256(raw).hexdigest() for raw in dovecot.fetch_all(user)}
    with psycopg.connect(url) as conn:
        sources = conn.execute("SELECT id, sha256, data FROM raw_sources").fetchall()
        assert len(sources) == 45 and {sha for _id, sha, _data in sources} == digests
        assert all(hashlib.sha256(bytes(data)).hexdigest() == sha for _id, sha, data in sources)
        named = conn.execute(
            "SELECT COUNT(DISTINCT raw_offset) FROM email_deliveries WHERE raw_pack = 'db'"
            " AND raw_offset IN (SELECT id FROM raw_sources)"
        ).fetchone()[0]
        assert named == 45
        assert conn.execute("SELECT COUNT(*) FROM raw_uploads").fetchone()[0] == 0  # every note settled


def test_the_uploads_of_a_batch_that_never_committed_are_deleted_by_the_next_fetch_of_its_account(
    espomail, pg, group_account, dovecot, monkeypatch
):
    """A host killed between an upload and the transaction that names its sources leaves
    them noted in raw_uploads; the next fetch that takes the account deletes them (and only
    them: another account's note, and every source a row names, stay)."""
    _, url, _ = pg
    monkeypatch.setenv("ESPOMAIL_DB", url)
    _, user = group_account("abandoned")
    group_account("other")
    dovecot.append(user, [build_message(subject="kept", body="kept\n")])
    assert espomail("fetch", "--json").json["new"] == 1
    store = open_store(url)
    try:
        account_id, other_id = (accounts_q.account_by_name(store, name).id for name in ("abandoned", "other"))
        with store.atomic():  # what a killed host's uploader committed
            dead = insert_raw(store, [("a" * 64, b"dead one"), ("b" * 64, b"dead two")])
            note_upload(store, account_id, dead)
            elsewhere = insert_raw(store, [("c" * 64, b"another account's batch, still being stored")])
            note_upload(store, other_id, elsewhere)
    finally:
        store.close()

    result = espomail("fetch", "--account", "abandoned", "--json")

    assert result.exit_code == 0, result
    with psycopg.connect(url) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM raw_sources")}
        assert not ids & set(dead) and set(elsewhere) <= ids
        assert conn.execute("SELECT account_id FROM raw_uploads").fetchall() == [(other_id,)]
        named = conn.execute("SELECT raw_offset FROM email_deliveries WHERE raw_pack = 'db'").fetchall()
        assert named and all(offset in ids for (offset,) in named)


def test_two_connections_storing_the_same_message_id_at_once_make_one_email(pg):
    _, url, _ = pg
    stores = [open_store(url), open_store(url)]
    started = threading.Barrier(2)
    results: list = [None, None]

    def insert(index: int) -> None:
        store = stores[index]
        with store.atomic():
            where = store.raw.put([("0" * 64, b"raw")])[0]
            row = ("<same@example.com>", 1, "s", None, None, "[]", "[]", "[]", "[]", "{}", None, None, "[]")
            started.wait()
            results[index] = emails_q.insert_fetched_many(
                store, [(*row, 3, 0, "0" * 64, where.pack, where.offset, 0, 0, 0)]
            )

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results[0] == results[1] and len(results[0]) == 1
    assert stores[0].value("SELECT COUNT(*) FROM emails") == 1
    for store in stores:
        store.close()


def test_leases_are_judged_by_the_database(pg):
    _, url, _ = pg
    first, second = open_store(url), open_store(url)
    with first.atomic():
        account_id = first.insert(
            "mail_accounts",
            {
                "name": "a",
                "kind": "group",
                "address": "a@x",
                "address_lower": "a@x",
                "created_at": "",
                "updated_at": "",
            },
        )
    one = accounts_q.lease_holder(first, "hostA:1:aa")
    two = accounts_q.lease_holder(second, "hostA:2:bb")  # the same host name: still another holder
    with first.atomic():
        assert accounts_q.take_lease(first, account_id, one, 300, "hostA")
    with second.atomic():
        assert not accounts_q.take_lease(second, account_id, two, 300, "hostA")
    # While the first holds the row in a transaction, a claim skips it instead of waiting.
    with first.atomic():
        assert accounts_q.renew_lease(first, account_id, one, 300)
        with second.atomic():
            assert not accounts_q.take_lease(second, account_id, two, 300, "hostA")
    # Expired by the database's clock: taken over; the first's next renewal fails.
    with first.atomic():
        first.execute("UPDATE mail_accounts SET lease_expires_at = '2000-01-01T00:00:00Z' WHERE id = ?", [account_id])
    with second.atomic():
        assert accounts_q.take_lease(second, account_id, two, 300, "hostA")
    accounts_q.hold(first, account_id, one, 300)
    with pytest.raises(EspomailError, match="another fetch host took this account over"):
        with first.atomic():
            accounts_q.save_folder_state(first, account_id, "INBOX", {"last_uid": 9})
    assert first.value("SELECT COUNT(*) FROM fetch_state") == 0
    # A holder whose connection is gone (a killed process) loses its lease at once.
    second.close()
    third = open_store(url)
    with third.atomic():
        assert accounts_q.take_lease(third, account_id, accounts_q.lease_holder(third, "hostB:3:cc"), 300, "hostB")
    first.close()
    third.close()


# -- the server's own failures -------------------------------------------------------------------


def test_a_read_only_server_is_one_error_and_changes_nothing(espomail, pg):
    """A --db pointed at a standby (here: default_transaction_read_only) refuses every write:
    one line saying so, exit 1, no traceback; reads still work."""
    server, url, name = pg
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                psycopg.sql.Identifier(name)
            )
        )
    result = espomail("--db", url, "team", "add", "support")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the PostgreSQL server refuses writes (a read-only standby, or default_transaction_read_only): "
        "point --db/ESPOMAIL_DB at the primary server and rerun; nothing was changed\n"
    )
    assert server.password not in result.stderr
    listed = espomail("--db", url, "team", "list", "--json")
    assert (listed.exit_code, listed.json) == (0, [])


class _ServerSaid(Exception):
    """What psycopg raises for a server's error: it carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"server error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate, store_failing",
    [
        ("53100", True),  # disk full
        ("40001", True),  # serialization failure: the batch waits for the next run
        ("57P01", True),  # administrator shutdown
        ("25006", True),  # read-only transaction
        ("23505", False),  # a unique violation: a value, handled per message
        ("22021", False),  # a bad byte sequence in a value
    ],
)
def test_server_errors_are_told_apart_by_their_sqlstate(sqlstate, store_failing):
    from espomail.failures import MachineError, translate
    from espomail.store import engine

    assert engine.is_engine_failure(_ServerSaid(sqlstate)) is store_failing
    said = translate(_ServerSaid(sqlstate))
    if sqlstate == "53100":
        assert isinstance(said, MachineError) and "PostgreSQL server's disk is full" in said.message
    elif sqlstate != "25006":
        assert said is None  # an unexpected error: one line naming it, from the CLI's last defence
