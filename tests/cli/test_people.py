"""``espomail team|user|role`` end to end: JSON keys, errors, one transaction per command."""

import pytest

USER_KEYS = {"id", "username", "name", "emails", "is_admin", "is_active", "teams", "roles"}
ROLE_KEYS = {
    "id",
    "name",
    "email_create",
    "email_read",
    "email_edit",
    "email_delete",
    "personal_accounts",
    "group_send",
}


def dump(db):
    return db.dump()


@pytest.fixture
def support(espomail):
    assert espomail("init").exit_code == 0
    assert espomail("team", "add", "support", "--position", "agent").exit_code == 0
    assert espomail("role", "add", "agent", "--email-read", "team").exit_code == 0


def test_user_add_and_show_json(espomail, support):
    added = espomail(
        "user", "add", "alice", "--email", "alice@example.com", "--team", "support:agent", "--role", "agent"
    )
    assert added.exit_code == 0, added
    shown = espomail("user", "show", "alice", "--json")
    assert shown.exit_code == 0
    user = shown.json
    assert USER_KEYS <= set(user)
    assert user["emails"] == ["alice@example.com"]
    assert user["teams"] == [{"name": "support", "position": "agent"}]
    assert user["roles"] == ["agent"]
    assert user["permissions"]["email_read"] == "team"


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["bob", "--email", "not-an-address"], 2, "not a valid email address"),
        (["bob", "--email", "bob@example.com", "--team", "nosuch"], 3, "no team named 'nosuch'"),
        (["bob", "--email", "bob@example.com", "--team", "support:boss"], 2, "no position 'boss'"),
        (["bob", "--email", "bob@example.com", "--role", "nosuch"], 3, "no role named"),
        (["alice", "--email", "other@example.com"], 2, "exists already"),
        (["bob", "--email", "ALICE@example.com"], 2, "belongs to user 'alice'"),
    ],
)
def test_rejected_user_add_changes_nothing(espomail, support, db, args, code, words):
    assert espomail("user", "add", "alice", "--email", "alice@example.com").exit_code == 0
    before = dump(db)
    result = espomail("user", "add", *args)
    assert result.exit_code == code
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert words in result.stderr
    assert result.stdout == ""
    assert dump(db) == before


def test_json_errors_carry_a_code(espomail, support):
    result = espomail("user", "show", "nobody", "--json")
    assert result.exit_code == 3
    assert '"code": "not_found"' in result.stderr


def test_user_update_addresses_teams_roles(espomail, support):
    espomail("user", "add", "alice", "--email", "alice@example.com")
    result = espomail(
        "user",
        "update",
        "alice",
        "--add-email",
        "a.l@example.com",
        "--remove-email",
        "alice@example.com",
        "--add-team",
        "support",
        "--add-role",
        "agent",
        "--inactive",
        "--json",
    )
    assert result.exit_code == 0, result
    user = result.json
    assert user["emails"] == ["a.l@example.com"]
    assert user["teams"] == [{"name": "support", "position": None}]
    assert user["is_active"] is False


def test_last_address_cannot_be_removed(espomail, support):
    espomail("user", "add", "alice", "--email", "alice@example.com")
    result = espomail("user", "update", "alice", "--remove-email", "alice@example.com")
    assert result.exit_code == 2
    assert "no email address left" in result.stderr


def test_team_and_role_lists(espomail, support):
    teams = espomail("team", "list", "--json").json
    assert [(t["name"], t["positions"]) for t in teams] == [("support", ["agent"])]
    roles = espomail("role", "list", "--json").json
    assert ROLE_KEYS <= set(roles[0])
    assert roles[0]["email_read"] == "team" and roles[0]["email_delete"] == "no"


def test_role_levels_are_validated(espomail, support):
    result = espomail("role", "add", "bad", "--email-read", "most")
    assert result.exit_code == 2
    assert "Error:" in result.stderr


def test_non_admin_cannot_manage_people(espomail, support):
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "agent")
    result = espomail("--as", "alice", "team", "add", "sales")
    assert result.exit_code == 4
    assert "administrator" in result.stderr
    assert espomail("--as", "alice", "user", "add", "eve", "--email", "e@example.com").exit_code == 4


def test_unknown_as_user(espomail, support):
    assert espomail("--as", "ghost", "team", "list").exit_code == 3


def test_every_group_has_help(espomail):
    result = espomail("--help")
    assert result.exit_code == 0
    groups = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    for group in groups:
        helped = espomail(group, "--help")
        assert helped.exit_code == 0, group
        assert "Usage:" in helped.stdout
