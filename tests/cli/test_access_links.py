"""Issue 13 item 4: who may steer linking, follow, link into a case, and take an address.

Decisions (policy/access.py's table, docs/access.md): adding or importing a CRM record needs
email edit level all ('record.create': a record's addresses decide the parent of every
future email); following a record needs to be oneself and, for a case, case access
('record.follow'); ``email link --parent case:N`` and ``email send --parent case:N`` need case
access besides the email permission; a personal account takes one of its owner's
addresses, never a group account's ('account.address'); ``filter test`` shows only the
filters one may manage.
"""

import pytest

from espomail.testing.messages import build_message

LEVELS = ("no", "own", "team", "all")


def dump(db):
    """The store's rows (either engine)."""
    return db.dump()


@pytest.fixture
def world(espomail, tmp_path):
    def run(*args, input=None):
        result = espomail(*args, input=input)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "support")
    run("team", "add", "sales")
    run("role", "add", "base", "--email-read", "team", "--email-create", "yes", "--personal-accounts", "yes")
    run("user", "add", "alice", "--email", "alice@example.com", "--team", "support", "--role", "base")
    run("user", "add", "bob", "--email", "bob@example.com", "--email", "bob@home.example", "--team", "sales",
        "--role", "base")  # fmt: skip
    run("user", "add", "dave", "--email", "dave@example.com")  # no role, no team
    run("record", "add", "account", "--name", "Acme")
    common = ("--host", "h", "--username", "u", "--password-env", "X")
    run("account", "add-group", "support", "--address", "support@example.com", "--team", "support",
        "--create-case", "--target-team", "support", *common)  # fmt: skip
    ids = {}
    for label, to, account in (("case-mail", "support@example.com", "support"), ("bob-mail", "bob@example.com", None)):
        path = tmp_path / f"{label}.eml"
        path.write_bytes(build_message(to=to, subject=label))
        run("email", "import", path, *(["--account", account, "--create-cases"] if account else []))
        ids[label] = run("email", "list", "--json").json[0]["id"]
    return ids


def set_edit(espomail, level):
    assert espomail("role", "update", "base", "--email-edit", level).exit_code == 0


RECORD_ADDS = [
    ("record", "add", "contact", "--name", "Steer", "--email", "support@example.com"),
    ("record", "add", "contact", "--name", "Steer", "--email", "customer@example.net", "--account", "Acme"),
    ("record", "add", "account", "--name", "Other", "--email", "info@other.example"),
    ("record", "add", "lead", "--name", "Lead", "--email", "lead@example.org"),
    ("record", "add", "opportunity", "--name", "Deal"),
]


@pytest.mark.parametrize("level", LEVELS)
def test_adding_records_needs_edit_all(espomail, world, db, tmp_path, level):
    set_edit(espomail, level)
    csv = tmp_path / "contacts.csv"
    csv.write_text("name,email\nSteer,support@example.com\n")
    for user in ("bob", "dave"):
        for args in [*RECORD_ADDS, ("record", "import", "contact", csv)]:
            before = dump(db)
            result = espomail("--as", user, *args)
            if user == "bob" and level == "all":
                assert result.exit_code == 0, (args, result)
            else:
                assert result.exit_code == 4, (user, args, result)
                assert "email edit all" in result.stderr and result.stdout == ""
                assert dump(db) == before
    assert espomail("record", "add", "contact", "--name", "Admin", "--email", "x@example.com").exit_code == 0


def test_following_needs_oneself_and_a_visible_case(espomail, world, db):
    for user, args in (
        ("dave", ("record", "follow", "case", "1", "--user", "dave")),  # no role, not on the case's team
        ("bob", ("record", "follow", "case", "1", "--user", "bob")),  # read team, another team
        ("bob", ("record", "follow", "account", "1", "--user", "alice")),  # another user
        ("bob", ("record", "unfollow", "account", "1", "--user", "alice")),
    ):
        before = dump(db)
        result = espomail("--as", user, *args)
        assert result.exit_code == 4, (user, args, result)
        assert dump(db) == before
    assert espomail("--as", "alice", "record", "follow", "case", "1", "--user", "alice").exit_code == 0  # her team
    assert espomail("--as", "dave", "record", "follow", "account", "1", "--user", "dave").exit_code == 0
    espomail("case", "update", "1", "--assign", "bob")  # the assignee may follow
    assert espomail("--as", "bob", "record", "follow", "case", "1", "--user", "bob").exit_code == 0
    followers = espomail("case", "show", "1", "--json").json["followers"]
    assert sorted(followers) == ["alice", "bob"]
    assert espomail("record", "follow", "case", "1", "--user", "dave").exit_code == 0  # administrators decide


@pytest.mark.parametrize("edit", ["own", "team", "all"])
def test_linking_into_a_case_needs_access_to_it(espomail, world, db, edit):
    set_edit(espomail, edit)
    before = dump(db)
    denied = espomail("--as", "bob", "email", "link", world["bob-mail"], "--parent", "case:1")
    assert denied.exit_code == 4 and "case access" in denied.stderr and denied.stdout == ""
    assert dump(db) == before
    linked = espomail("--as", "bob", "email", "link", world["bob-mail"], "--parent", "account:1")
    assert linked.exit_code == 0  # records other than cases: anyone who may edit the email
    espomail("user", "update", "bob", "--add-team", "support")
    assert espomail("--as", "bob", "email", "link", world["bob-mail"], "--parent", "case:1").exit_code == 0


def test_sending_into_a_case_needs_access_to_it(espomail, world, db):
    for user in ("bob", "dave"):
        before = dump(db)
        result = espomail("--as", user, "email", "send", "--from", f"{user}@example.com", "--to", "x@example.org",
                          "--subject", "hello", "--body", "b", "--parent", "case:1")  # fmt: skip
        assert result.exit_code == 4, result
        assert dump(db) == before


@pytest.mark.parametrize("command", ["add-personal", "update"])
def test_a_personal_account_takes_its_owners_addresses_only(espomail, world, db, command):
    args = ("--host", "h", "--username", "u", "--password-stdin")
    if command == "update":
        espomail("--as", "bob", "account", "add-personal", "bobmail", "--user", "bob", "--address", "bob@example.com",
                 *args, input="pw\n")  # fmt: skip
    target = ("bobmail",) if command == "update" else ("bob2", "--user", "bob", *args)
    admin_target = ("bobmail",) if command == "update" else ("bob3", "--user", "bob", *args)
    for address, code in (
        ("support@example.com", 4),  # a group account's
        ("alice@example.com", 4),  # another user's
        ("SUPPORT@example.com", 4),
        ("ceo@customer.example", 4),  # nobody's: a customer's, say (auto-replies to it would stop)
    ):
        before = dump(db)
        result = espomail("--as", "bob", "account", command, *target, "--address", address, input="pw\n")
        assert result.exit_code == code, (address, result)
        assert dump(db) == before
    ok = espomail("--as", "bob", "account", command, *target, "--address", "bob@home.example", input="pw\n")
    assert ok.exit_code == 0, ok
    # administrators may give any address, but not a group account's
    admin = espomail("account", command, *admin_target, "--address", "support@example.com", input="pw\n")
    assert admin.exit_code == 2 and "group account 'support'" in admin.stderr


def test_filter_test_shows_only_filters_one_may_see(espomail, world, tmp_path):
    """A group account's filters are the administrator's: ``filter test --account`` of one is
    refused, like ``filter show`` (global filters, which act on everyone's mail, are listed
    to everyone)."""
    espomail("filter", "add", "everyone", "--global", "--subject", "*spam*")
    espomail("filter", "add", "support-only", "--account", "support", "--subject", "*hello*")
    espomail("--as", "bob", "filter", "add", "mine", "--user", "bob", "--subject", "*hello*", "--action", "none")
    path = tmp_path / "t.eml"
    path.write_bytes(build_message(subject="hello there"))
    denied = espomail("--as", "bob", "filter", "test", path, "--account", "support")
    assert denied.exit_code == 4 and "support-only" not in denied.stderr and denied.stdout == ""
    shown = espomail("--as", "bob", "filter", "test", path, "--user", "bob", "--json")
    assert shown.exit_code == 0 and "support-only" not in shown.stdout
    assert [f["name"] for f in shown.json["matching_filters"]] == ["mine"]
    admin = espomail("filter", "test", path, "--account", "support", "--json").json
    assert [f["name"] for f in admin["matching_filters"]] == ["support-only"]
