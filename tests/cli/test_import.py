"""``espomail email import``: one file, an mbox, a Maildir, a directory; duplicates recognised."""

import mailbox

from espomail.testing.messages import build_message


def test_import_eml_mbox_maildir(espomail, tmp_path):
    one = tmp_path / "one.eml"
    one.write_bytes(build_message(subject="single"))
    box = mailbox.mbox(str(tmp_path / "old.mbox"))
    for i in range(3):
        box.add(build_message(subject=f"mbox {i}"))
    box.close()
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    maildir.add(build_message(subject="maildir"))
    maildir.close()

    assert espomail("email", "import", one, "--json").json["new"] == 1
    assert espomail("email", "import", tmp_path / "old.mbox", "--json").json["new"] == 3
    assert espomail("email", "import", tmp_path / "Maildir", "--json").json["new"] == 1
    again = espomail("email", "import", one, "--json").json
    assert again["new"] == 0 and again["duplicates"] == 1
    subjects = sorted(e["subject"] for e in espomail("email", "list", "--json").json)
    assert subjects == ["maildir", "mbox 0", "mbox 1", "mbox 2", "single"]


def test_import_as_an_account_adds_its_teams(espomail, tmp_path):
    espomail("team", "add", "sales")
    espomail("user", "add", "sam", "--email", "sam@example.com", "--team", "sales")
    espomail(
        "account",
        "add-group",
        "sales",
        "--address",
        "sales@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
        "--team",
        "sales",
    )
    path = tmp_path / "m.eml"
    path.write_bytes(build_message(to="sales@example.com"))
    assert espomail("email", "import", path, "--account", "sales").exit_code == 0
    [email] = espomail("email", "list", "--json").json
    assert email["teams"] == ["sales"] and email["users"] == ["sam"] and email["accounts"] == ["sales"]


def test_import_errors(espomail, tmp_path):
    assert espomail("email", "import", tmp_path / "missing.eml").exit_code == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert espomail("email", "import", empty).exit_code == 2
