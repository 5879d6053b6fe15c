"""Issue 13 item 3: every way to reach an email goes through the one read check.

Four users of the support team, one per read level (u_no, u_own, u_team, u_all), and alice
(team sales) with a personal account. The CRM account Acme has a contact whose mail:

  P   customer -> alice, through alice's personal account: parent account Acme (a stream
      note with P's body on Acme); users {alice}, no team
  S   customer -> support@ (group account, team support, create-case): case 1
  P2  a reply in case 1's thread through alice's account: stream note on case 1; users
      {alice}, teams {support} (the replied email's)
  Q   alice's private mail linked to case 1 by an administrator: users {alice}, no team

Every path (email show/list/explain, record show streams, case show/list/update, notifications,
JSON and tables) shows an email, its id or its body only to who may read it.
"""

import pytest

from espomail.testing.messages import build_message

LEVELS = ("no", "own", "team", "all")
USERS = [f"u_{level}" for level in LEVELS]
MARKS = {"P": "BODY-ONE-PRIVATE", "S": "BODY-TWO-SUPPORT", "P2": "BODY-THREE-PRIVATE", "Q": "BODY-FOUR-PRIVATE"}
# who may read which email (SPEC 8): own = among its users; team = or a shared team
READS = {
    "u_no": set(),
    "u_own": {"S"},
    "u_team": {"S", "P2"},
    "u_all": {"P", "S", "P2", "Q"},
    "alice": {"P", "P2", "Q"},
}


@pytest.fixture
def world(espomail, tmp_path):
    def run(*args):
        result = espomail(*args)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "support")
    run("team", "add", "sales")
    for level in LEVELS:
        if level != "no":
            run("role", "add", f"read-{level}", "--email-read", level)
        roles = ("--role", f"read-{level}") if level != "no" else ()
        run("user", "add", f"u_{level}", "--email", f"u_{level}@example.com", "--team", "support", *roles)
    run("user", "add", "alice", "--email", "alice@example.com", "--team", "sales", "--role", "read-own")
    run("record", "add", "account", "--name", "Acme")
    run("record", "add", "contact", "--name", "Cust", "--email", "customer@acme.example", "--account", "Acme")
    common = ("--host", "h", "--username", "u", "--password-env", "X")
    run("account", "add-group", "support", "--address", "support@example.com", "--team", "support",
        "--create-case", "--target-team", "support", *common)  # fmt: skip
    run("account", "add-personal", "alicemail", "--user", "alice", "--address", "alice@example.com", *common)
    ids = {}

    def mail(label, account, to, **kw):
        path = tmp_path / f"{label}.eml"
        raw = build_message(from_="customer@acme.example", to=to, subject=f"SUBJECT-{label}", body=MARKS[label], **kw)
        path.write_bytes(raw)
        run("email", "import", path, "--account", account, "--create-cases")
        ids[label] = run("email", "list", "--json").json[0]["id"]
        return raw

    mail("P", "alicemail", "alice@example.com")
    s_raw = mail("S", "support", "support@example.com")
    s_id = s_raw.split(b"Message-ID: ")[1].split(b"\n")[0].decode().strip()
    mail("P2", "alicemail", "alice@example.com", in_reply_to=s_id)
    mail("Q", "alicemail", "alice@example.com", message_id="<q@mail.example.net>")
    run("email", "link", ids["Q"], "--parent", "case:1")
    return ids


def visible(text, user, labels=MARKS):
    """The labels whose body marks appear in ``text``."""
    return {label for label, mark in MARKS.items() if mark in text and label in labels}


@pytest.mark.parametrize("user", [*USERS, "alice"])
def test_record_stream_shows_notes_of_readable_emails_only(espomail, world, user):
    """The issue's case: a user without a role saw stream[].body of alice's private mail."""
    for fmt in (("--json",), ()):
        shown = espomail("--as", user, "record", "show", "account", "1", *fmt)
        assert shown.exit_code == 0, shown
        assert visible(shown.stdout, user) <= READS[user], (user, fmt)
    stream = espomail("--as", user, "record", "show", "account", "1", "--json").json["stream"]
    labels = {v: k for k, v in world.items()}
    assert {labels[n["email_id"]] for n in stream if n["email_id"]} == {"P", "Q"} & READS[user]


@pytest.mark.parametrize("user", USERS)
def test_case_views_show_only_readable_emails(espomail, world, user):
    labels = {v: k for k, v in world.items()}
    shown = espomail("--as", user, "case", "show", "1", "--json")
    assert shown.exit_code == 0, shown  # every user is on the case's team
    case = shown.json
    assert {labels[i] for i in case["email_ids"]} == {"S", "P2", "Q"} & READS[user]
    assert {labels[n["email_id"]] for n in case["stream"] if n["email_id"]} == {"S", "P2"} & READS[user]
    assert (case["description"] is not None) == ("S" in READS[user])
    assert visible(shown.stdout, user) <= READS[user]
    table = espomail("--as", user, "case", "show", "1")
    assert visible(table.stdout, user) <= READS[user]
    [listed] = espomail("--as", user, "case", "list", "--json").json
    assert listed["email_ids"] == case["email_ids"]
    updated = espomail("--as", user, "case", "update", "1", "--priority", "High", "--json")
    assert updated.exit_code == 0 and updated.json["email_ids"] == case["email_ids"]
    assert visible(updated.stdout, user) <= READS[user]


@pytest.mark.parametrize("user", [*USERS, "alice"])
def test_email_commands_show_only_readable_emails(espomail, world, user):
    for label, email_id in world.items():
        for args in (("email", "show", email_id, "--json"), ("email", "show", email_id, "--raw"),
                     ("email", "explain", email_id, "--json"), ("email", "show", email_id)):  # fmt: skip
            result = espomail("--as", user, *args)
            if label in READS[user]:
                assert result.exit_code == 0, (user, label, args)
            else:
                assert result.exit_code == 4 and result.stdout == "", (user, label, args)
    listed = espomail("--as", user, "email", "list", "--folder", "all", "--bodies", "--json")
    if user == "u_no":
        assert listed.exit_code == 4
    else:
        labels = {v: k for k, v in world.items()}
        assert {labels[e["id"]] for e in listed.json} == READS[user]
        assert visible(listed.stdout, user) <= READS[user]


def test_notifications_follow_the_read_level_of_today(espomail, world, tmp_path):
    """u_all follows Acme and is told of new mail; once the role drops to own, the
    notifications about mail they may no longer read are not listed (nor their subjects)."""
    assert espomail("--as", "u_all", "record", "follow", "account", "1", "--user", "u_all").exit_code == 0
    path = tmp_path / "new.eml"
    path.write_bytes(build_message(from_="customer@acme.example", to="alice@example.com", subject="SUBJECT-NEW"))
    assert espomail("email", "import", path, "--account", "alicemail").exit_code == 0
    listed = espomail("--as", "u_all", "notification", "list", "--json").json
    assert [n["subject"] for n in listed] == ["SUBJECT-NEW", "SUBJECT-S"]
    espomail("role", "update", "read-all", "--email-read", "own")
    for fmt in (("--json",), ()):
        hidden = espomail("--as", "u_all", "notification", "list", *fmt)
        assert hidden.exit_code == 0 and "SUBJECT-NEW" not in hidden.stdout
    kept = espomail("--as", "u_all", "notification", "list", "--json").json
    assert [n["subject"] for n in kept] == ["SUBJECT-S"]  # support mail reached them: still theirs
    admin = espomail("notification", "list", "--user", "u_all", "--json").json
    assert [n["subject"] for n in admin] == ["SUBJECT-NEW", "SUBJECT-S"]  # the administrator sees everything


def test_alice_sees_her_private_mail_everywhere(espomail, world):
    stream = espomail("--as", "alice", "record", "show", "account", "1", "--json").json["stream"]
    assert {MARKS["P"], MARKS["Q"]} == {note["body"].strip() for note in stream}
    assert espomail("--as", "alice", "case", "show", "1").exit_code == 4  # not on the case's team
