"""Access control end to end (SPEC 8): levels no/own/team/all for read, edit and delete.

Three users in two teams (ann and ben in red, cat in blue); five emails reaching them in
different ways:

  E1  addressed to ann, no account             users {ann}        teams {}
  E2  through the red group account            users {ann, ben}   teams {red}
  E3  through the blue account, no team users  users {}           teams {blue}
  E4  addressed to cat, blue account, assigned  users {cat}        teams {blue}   assigned cat
  E5  nobody known                             users {}           teams {}

Every denial exits 4, names the permission and changes nothing.
"""

import pytest

from espomail.testing.messages import build_message

USERS = ("ann", "ben", "cat")
EMAILS = ("E1", "E2", "E3", "E4", "E5")

# level -> user -> the emails that user may read (list, show, explain) / edit (link)
READ = {
    "no": {"ann": set(), "ben": set(), "cat": set()},
    "own": {"ann": {"E1", "E2"}, "ben": {"E2"}, "cat": {"E4"}},
    "team": {"ann": {"E1", "E2"}, "ben": {"E2"}, "cat": {"E3", "E4"}},
    "all": {user: set(EMAILS) for user in USERS},
}
# delete: own = the assigned user (or the sender); team adds the emails of one's teams
DELETE = {
    "no": {"ann": set(), "ben": set(), "cat": set()},
    "own": {"ann": set(), "ben": set(), "cat": {"E4"}},
    "team": {"ann": {"E2"}, "ben": {"E2"}, "cat": {"E3", "E4"}},
    "all": {user: set(EMAILS) for user in USERS},
}


def dump(db):
    return db.dump()


@pytest.fixture
def world(espomail, tmp_path):
    def run(*args):
        result = espomail(*args)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "red")
    run("team", "add", "blue")
    run("role", "add", "tested", "--email-create", "yes")
    for user, team in (("ann", "red"), ("ben", "red"), ("cat", "blue")):
        run("user", "add", user, "--email", f"{user}@example.com", "--team", team, "--role", "tested")
    run("record", "add", "account", "--name", "Acme")
    common = ("--host", "h", "--username", "u", "--password-env", "X")
    run("account", "add-group", "redbox", "--address", "red@example.com", "--team", "red", *common)
    run(
        "account",
        "add-group",
        "bluebox",
        "--address",
        "blue@example.com",
        "--team",
        "blue",
        "--no-add-team-users",
        *common,
    )
    plan = [
        ("E1", "ann@example.com", None),
        ("E2", "red@example.com", "redbox"),
        ("E3", "blue@example.com", "bluebox"),
        ("E4", "cat@example.com", "bluebox"),
        ("E5", "someone@elsewhere.example", None),
    ]
    ids = {}
    for label, to, account in plan:
        path = tmp_path / f"{label}.eml"
        path.write_bytes(build_message(from_="customer@outside.example", to=to, subject=label))
        run("email", "import", path, *(["--account", account, "--create-cases"] if account else []))
        ids[label] = run("email", "list", "--json").json[0]["id"]
    run("email", "update", ids["E4"], "--assign", "cat")
    return ids


def set_level(espomail, field, level):
    assert espomail("role", "update", "tested", f"--email-{field}", level).exit_code == 0


@pytest.mark.parametrize("level", ["no", "own", "team", "all"])
def test_read_level_decides_lists_shows_and_explains(espomail, world, db, level):
    set_level(espomail, "read", level)
    labels = {v: k for k, v in world.items()}
    for user in USERS:
        expected = READ[level][user]
        listed = espomail("--as", user, "email", "list", "--folder", "all", "--json")
        if level == "no":
            assert listed.exit_code == 4 and "email read" in listed.stderr
        else:
            assert {labels[e["id"]] for e in listed.json} == expected, (user, level)
        for label in EMAILS:
            before = dump(db)
            shown = espomail("--as", user, "email", "show", world[label], "--json")
            explained = espomail("--as", user, "email", "explain", world[label])
            if label in expected:
                assert shown.exit_code == 0 and explained.exit_code == 0
            else:
                assert (shown.exit_code, explained.exit_code) == (4, 4), (user, label, level)
                assert "missing permission 'email read" in shown.stderr
                assert dump(db) == before


@pytest.mark.parametrize("level", ["no", "own", "team", "all"])
def test_edit_level_decides_who_links_an_email(espomail, world, db, level):
    set_level(espomail, "edit", level)
    set_level(espomail, "read", level)
    for user in USERS:
        for label in EMAILS:
            before = dump(db)
            result = espomail("--as", user, "email", "link", world[label], "--parent", "account:1")
            if label in READ[level][user]:
                assert result.exit_code == 0, (user, label, level, result)
            else:
                assert result.exit_code == 4, (user, label, level)
                assert "missing permission 'email edit" in result.stderr
                assert dump(db) == before


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("level", ["no", "own", "team", "all"])
def test_delete_level_decides_who_deletes(espomail, world, db, level, user):
    set_level(espomail, "delete", level)
    set_level(espomail, "read", "all")
    for label in EMAILS:
        before = dump(db)
        result = espomail("--as", user, "email", "delete", world[label], "--yes")
        if label in DELETE[level][user]:
            assert result.exit_code == 0, (user, label, level, result)
            assert espomail("email", "show", world[label]).exit_code == 3
        else:
            assert result.exit_code == 4, (user, label, level)
            assert "missing permission 'email delete" in result.stderr
            assert dump(db) == before


def test_trash_is_per_user_and_delete_removes_for_everyone(espomail, world, db):
    set_level(espomail, "read", "own")
    e2 = world["E2"]
    assert espomail("--as", "ann", "email", "trash", e2).exit_code == 0
    assert e2 not in [e["id"] for e in espomail("--as", "ann", "email", "list", "--json").json]
    assert e2 in [e["id"] for e in espomail("--as", "ben", "email", "list", "--json").json]
    db.execute("INSERT INTO attachments (email_id, content_type, size) VALUES (?, 'text/plain', 1)", [e2])
    unconfirmed = espomail("email", "delete", e2)
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    assert espomail("email", "delete", e2, "--yes").exit_code == 0
    assert espomail("--as", "ben", "email", "list", "--json").json == []
    for table in ("email_users", "attachments", "email_teams", "email_deliveries"):
        assert db.value(f"SELECT COUNT(*) FROM {table} WHERE email_id = ?", [e2]) == 0


@pytest.mark.parametrize("read", ["own", "team"])
def test_edit_beyond_read_reaches_only_what_one_reads(espomail, world, db, read):
    """An edit (or delete) level above the read level is capped by reading: one may change
    only an email one may read (and so never sees the body of another)."""
    set_level(espomail, "edit", "all")
    set_level(espomail, "delete", "all")
    set_level(espomail, "read", read)
    for user in USERS:
        for label in EMAILS:
            if label in READ[read][user]:
                continue
            before = dump(db)
            linked = espomail("--as", user, "email", "link", world[label], "--parent", "account:1", "--json")
            updated = espomail("--as", user, "email", "update", world[label], "--add-team", "red", "--json")
            deleted = espomail("--as", user, "email", "delete", world[label], "--yes", "--json")
            for result in (linked, updated, deleted):
                assert result.exit_code == 4 and "missing permission 'email read" in result.stderr, (user, label)
                assert result.stdout == ""
            assert dump(db) == before


def test_personal_accounts_permission_limit_and_ownership(espomail, world):
    args = ("--address", "ann@example.com", "--host", "h", "--username", "u", "--password-stdin")
    denied = espomail("--as", "ann", "account", "add-personal", "ann1", "--user", "ann", *args, input="pw\n")
    assert denied.exit_code == 4 and "personal email accounts" in denied.stderr
    espomail("role", "update", "tested", "--personal-accounts", "yes")
    for name in ("ann1", "ann2"):
        added = espomail("--as", "ann", "account", "add-personal", name, "--user", "ann", *args, input="pw\n")
        assert added.exit_code == 0, added
    third = espomail("--as", "ann", "account", "add-personal", "ann3", "--user", "ann", *args, input="pw\n")
    assert third.exit_code == 4 and "max_personal_accounts" in third.stderr
    assert espomail("--as", "ben", "account", "add-personal", "x", "--user", "ann", *args, input="pw\n").exit_code == 4
    assert espomail("--as", "ben", "account", "update", "ann1", "--inactive").exit_code == 4
    assert espomail("--as", "ben", "account", "remove", "ann1").exit_code == 4
    assert espomail("--as", "ben", "account", "show", "ann1").exit_code == 4
    assert [a["name"] for a in espomail("--as", "ann", "account", "list", "--json").json] == ["ann1", "ann2"]
    assert espomail("--as", "ann", "account", "update", "redbox", "--inactive").exit_code == 4
    assert espomail("--as", "ann", "fetch", "--account", "redbox").exit_code == 4


def test_filters_users_own_only_and_no_global(espomail, world):
    espomail("role", "update", "tested", "--personal-accounts", "yes")
    espomail(
        "--as",
        "ann",
        "account",
        "add-personal",
        "ann1",
        "--user",
        "ann",
        "--address",
        "ann@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-stdin",
        input="pw\n",
    )
    assert espomail("--as", "ann", "filter", "add", "g", "--global", "--from", "*@x.example").exit_code == 4
    assert espomail("--as", "ann", "filter", "add", "r", "--account", "redbox", "--from", "a*").exit_code == 4
    assert espomail("--as", "ann", "filter", "add", "b", "--user", "ben", "--from", "a*").exit_code == 4
    assert espomail("--as", "ann", "filter", "add", "mine", "--user", "ann", "--from", "a*").exit_code == 0
    assert espomail("--as", "ann", "filter", "add", "acct", "--account", "ann1", "--from", "a*").exit_code == 0
    assert espomail("--as", "ben", "filter", "remove", "mine").exit_code == 4
    assert {f["name"] for f in espomail("--as", "ben", "filter", "list", "--json").json} == set()


def test_admin_only_areas(espomail, world):
    for args in (
        ("team", "add", "green"),
        ("user", "update", "ben", "--add-email", "b2@example.com"),
        ("role", "update", "tested", "--email-read", "all"),
        ("outbound", "set", "--address", "red@example.com"),
        ("email", "import", "/dev/null"),
        ("email", "reprocess", "--failed"),
    ):
        result = espomail("--as", "ann", *args)
        assert result.exit_code == 4, args
        assert "administrator" in result.stderr


def test_denials_are_written_to_the_log(espomail, world, db_path):
    espomail("--as", "ann", "team", "add", "green")
    log = (db_path.parent / "espomail.log").read_text()
    assert "permission denied: user=ann" in log and "add teams" in log


def test_effective_permissions_merge_roles(espomail, world):
    espomail("role", "add", "reader", "--email-read", "team", "--group-send", "team")
    espomail("role", "update", "tested", "--email-read", "own", "--email-delete", "own")
    espomail("user", "update", "ann", "--add-role", "reader")
    permissions = espomail("user", "show", "ann", "--json").json["permissions"]
    assert permissions == {
        "email_create": "yes",
        "email_read": "team",
        "email_edit": "no",
        "email_delete": "own",
        "personal_accounts": "no",
        "group_send": "team",
    }
    role = espomail("role", "show", "reader", "--json").json
    assert role["email_read"] == "team" and role["users"] == ["ann"]


def test_delete_zeroes_the_raw_source(espomail, world, db_path, db):
    raw = espomail("email", "show", world["E1"], "--raw").stdout.encode()

    def kept() -> list[bytes]:  # packs beside a SQLite file; rows of raw_sources on PostgreSQL
        if db.engine == "postgresql":
            return [bytes(r["data"]) for r in db.rows("SELECT data FROM raw_sources")]
        return [p.read_bytes() for p in (db_path.parent / "espomail-raw").glob("pack-*.dat")]

    assert raw and any(raw in blob for blob in kept())
    assert espomail("email", "delete", world["E1"], "--yes").exit_code == 0
    assert not any(raw in blob for blob in kept())
