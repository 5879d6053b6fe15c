"""What users are told (issue 17): `notification read --all` reads the acting user's
notifications only; an administrator reads another user's with --user."""

from __future__ import annotations

import pytest

from espomail.testing.messages import build_message


@pytest.fixture
def told(espomail, tmp_path):
    """alice and bob (team support) each have two unread notifications of two imported emails."""
    espomail("team", "add", "support")
    espomail("role", "add", "reader", "--email-read", "team")
    for name in ("alice", "bob"):
        espomail("user", "add", name, "--email", f"{name}@example.com", "--team", "support", "--role", "reader")
    espomail("user", "add", "root", "--email", "root@example.com", "--admin")
    added = espomail(
        "account", "add-group", "support", "--address", "support@example.com", "--host", "h",
        "--username", "u", "--password-env", "TEST_IMAP_PASSWORD", "--team", "support",
    )  # fmt: skip
    assert added.exit_code == 0, added
    for number in (1, 2):
        path = tmp_path / f"m{number}.eml"
        path.write_bytes(build_message(subject=f"question {number}"))
        assert espomail("email", "import", path, "--account", "support").exit_code == 0


def unread(espomail, user: str) -> int:
    return len(espomail("--as", user, "notification", "list", "--unread", "--json").json)


def test_read_all_reads_only_the_acting_users_notifications(espomail, told):
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (2, 2)
    result = espomail("--as", "alice", "notification", "read", "--all")
    assert (result.exit_code, result.stderr) == (0, "Marked 2 notification(s) read for alice\n")
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (0, 2)


def test_an_admin_user_reads_only_their_own_unless_they_name_another(espomail, told):
    root = espomail("--as", "root", "notification", "read", "--all", "--json")
    assert root.json == {"marked_read": 0}  # root has none; alice's and bob's stay unread
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (2, 2)
    other = espomail("--as", "root", "notification", "read", "--all", "--user", "bob")
    assert (other.exit_code, other.stderr) == (0, "Marked 2 notification(s) read for bob\n")
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (2, 0)


def test_without_as_read_all_needs_a_user(espomail, told):
    before = espomail("notification", "read", "--all")
    assert before.exit_code == 2
    assert before.stderr == (
        "Error: notifications belong to users: give --user U (or run as the user with --as U) to mark theirs read\n"
    )
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (2, 2)  # nothing changed
    assert espomail("notification", "read", "--all", "--user", "alice").exit_code == 0
    assert (unread(espomail, "alice"), unread(espomail, "bob")) == (0, 2)


def test_a_user_may_not_read_another_users_notifications(espomail, told):
    denied = espomail("--as", "alice", "notification", "read", "--all", "--user", "bob")
    assert denied.exit_code == 4
    # an administrator's action: no role grants it, so the hint does not send alice to ask for one
    assert "only administrators may (user add/update --admin); no role grants it" in denied.stderr
    assert "in a role" not in denied.stderr
    assert unread(espomail, "bob") == 2
    [first, _] = espomail("--as", "bob", "notification", "list", "--json").json
    assert espomail("--as", "alice", "notification", "read", first["id"]).exit_code == 3
    assert espomail("notification", "read", first["id"]).exit_code == 0  # the administrator: any one by id
    assert unread(espomail, "bob") == 1
