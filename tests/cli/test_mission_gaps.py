"""Issue 17: idempotent record imports, explicit options that never silently reset, and the
mission gaps of personal accounts (--personal-folder, --folder-map)."""

from __future__ import annotations

import pytest

from espomail.testing.messages import build_message

# -- record import: idempotent, updates by email address -----------------------------------


@pytest.fixture
def acme(espomail):
    espomail("record", "add", "account", "--name", "Acme Ltd")
    espomail("record", "add", "account", "--name", "Initech")


def test_a_second_import_changes_nothing(espomail, acme, tmp_path):
    csv = tmp_path / "contacts.csv"
    csv.write_text("name,email,account\nAnn,ann@acme.example,Acme Ltd\nBen,ben@x.example;b@x.example,\nCid,,\n")
    first = espomail("record", "import", "contact", csv, "--json")
    assert first.exit_code == 0, first
    assert [(r["name"], r["imported"]) for r in first.json] == [("Ann", "added"), ("Ben", "added"), ("Cid", "added")]
    assert first.stderr == "3 added, 0 updated, 0 unchanged\n"
    before = espomail("record", "list", "contact", "--json").json
    second = espomail("record", "import", "contact", csv)
    assert (second.exit_code, second.stderr) == (0, "0 added, 0 updated, 3 unchanged\n")
    assert "unchanged" in second.stdout
    assert espomail("record", "list", "contact", "--json").json == before  # no duplicate contact


def test_import_updates_the_contact_with_the_same_address(espomail, acme, tmp_path):
    espomail("record", "add", "contact", "--name", "Ann Old", "--email", "ann@acme.example", "--account", "Acme Ltd")
    csv = tmp_path / "contacts.csv"
    csv.write_text("name,email,account\nAnn Roe,ANN@acme.example;ann.roe@acme.example,Initech\nDee,dee@x.example,\n")
    result = espomail("record", "import", "contact", csv, "--json")
    assert result.exit_code == 0, result
    ann, dee = result.json
    assert (ann["id"], ann["name"], ann["imported"]) == (3, "Ann Roe", "updated")
    assert ann["emails"] == ["ann@acme.example", "ann.roe@acme.example"]  # the old address stays primary
    assert ann["account_id"] == 2
    assert dee["imported"] == "added"
    assert result.stderr == "1 added, 1 updated, 0 unchanged\n"
    # an empty account column keeps the account (an import never clears what the row does not give)
    csv.write_text("name,email\nAnn Roe,ann@acme.example\n")
    again = espomail("record", "import", "contact", csv, "--json")
    assert again.json[0]["imported"] == "unchanged" and again.json[0]["account_id"] == 2
    names = [r["name"] for r in espomail("record", "list", "contact", "--json").json]
    assert names == ["Ann Roe", "Dee"]


def test_ambiguous_rows_are_refused_and_nothing_is_imported(espomail, acme, tmp_path):
    espomail("record", "add", "contact", "--name", "Eve", "--email", "eve@x.example")
    espomail("record", "add", "contact", "--name", "Fay", "--email", "fay@x.example")
    csv = tmp_path / "contacts.csv"
    csv.write_text("name,email\nNew,new@x.example\nBoth,eve@x.example;fay@x.example\n")
    result = espomail("record", "import", "contact", csv)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: contacts.csv line 3: its addresses belong to different contacts (ids 3, 4); "
        "give one contact per row; nothing was imported\n"
    )
    assert [r["name"] for r in espomail("record", "list", "contact", "--json").json] == ["Eve", "Fay"]
    # (ids from the store: a PostgreSQL sequence does not take back the id of the refused row)
    gils = [espomail("record", "add", "lead", "--name", "Gil", "--json").json["id"] for _ in range(2)]
    csv.write_text("name\nGil\n")
    twice = espomail("record", "import", "lead", csv)
    assert twice.exit_code == 2 and f"several leads are named 'Gil' (ids {gils[0]}, {gils[1]})" in twice.stderr


def test_an_address_of_another_type_adds_a_record_of_this_type(espomail, tmp_path):
    espomail("record", "add", "lead", "--name", "Hal", "--email", "hal@x.example")
    csv = tmp_path / "contacts.csv"
    csv.write_text("name,email\nHal,hal@x.example\n")
    assert espomail("record", "import", "contact", csv, "--json").json[0]["imported"] == "added"
    assert espomail("record", "import", "contact", csv, "--json").json[0]["imported"] == "unchanged"


# -- account update: an explicit port stays when the security changes ------------------------


def _account(espomail, *extra):
    added = espomail(
        "account", "add-group", "support", "--address", "support@example.com", "--host", "imap.example.com",
        "--username", "u", "--password-env", "TEST_IMAP_PASSWORD", *extra, "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added
    return added.json


def test_an_explicit_port_survives_a_new_security(espomail):
    assert _account(espomail, "--security", "ssl", "--port", "1993")["port"] == 1993
    updated = espomail("account", "update", "support", "--security", "starttls", "--json").json
    assert (updated["security"], updated["port"]) == ("starttls", 1993)
    assert espomail("account", "update", "support", "--port", "143", "--json").json["port"] == 143
    # 143 is the default of starttls: it follows the security from now on
    assert espomail("account", "update", "support", "--security", "ssl", "--json").json["port"] == 993
    both = espomail("account", "update", "support", "--security", "starttls", "--port", "10143", "--json").json
    assert (both["security"], both["port"]) == ("starttls", 10143)


def test_a_default_port_follows_the_security(espomail):
    assert _account(espomail)["port"] == 993
    assert espomail("account", "update", "support", "--security", "starttls", "--json").json["port"] == 143


def test_an_explicit_smtp_port_survives_a_new_smtp_security(espomail):
    made = _account(espomail, "--smtp-host", "smtp.example.com", "--smtp-port", "2525")
    assert (made["smtp_security"], made["smtp_port"]) == ("starttls", 2525)
    updated = espomail("account", "update", "support", "--smtp-security", "ssl", "--json").json
    assert (updated["smtp_security"], updated["smtp_port"]) == ("ssl", 2525)
    espomail("account", "update", "support", "--smtp-security", "starttls", "--smtp-port", "587")  # its default
    assert espomail("account", "update", "support", "--smtp-security", "ssl", "--json").json["smtp_port"] == 465
    moved = espomail("account", "update", "support", "--smtp-host", "smtp2.example.com", "--json").json
    assert moved["smtp_port"] == 465


# -- personal accounts: --personal-folder and --folder-map -----------------------------------


@pytest.fixture
def alice(espomail):
    espomail("role", "add", "mine", "--email-read", "own", "--personal-accounts", "yes")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "mine")
    for folder in ("Mail", "Projects", "Lists"):
        assert espomail("folder", "add", folder, "--user", "alice").exit_code == 0


def _personal(espomail, dovecot, mailbox, *extra):
    box = mailbox("alice")
    added = espomail(
        "account", "add-personal", "alice-mail", "--user", "alice", "--address", "alice@example.com",
        "--host", dovecot.host, "--port", dovecot.port, "--security", "none", "--username", box,
        "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01", *extra, "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added
    return box, added.json


def _folders_of(espomail, user: str) -> dict[str, str | None]:
    """Subject -> the user's folder of each email they have (None: inbox)."""
    emails = espomail("--as", user, "email", "list", "--folder", "all", "--json").json
    return {e["subject"]: e["folder"] for e in emails}


def test_personal_folder_is_used_when_the_owners_address_is_in_the_mail(espomail, dovecot, mailbox, alice):
    box, account = _personal(espomail, dovecot, mailbox, "--personal-folder", "Mail")
    assert account["personal_folder"] == "Mail"
    dovecot.append(box, [
        build_message(to="alice@example.com", subject="to alice"),  # the normal case (was: inbox)
        build_message(to="someone@example.org", subject="bcc to alice"),
    ])  # fmt: skip
    assert espomail("fetch").exit_code == 0
    assert _folders_of(espomail, "alice") == {"to alice": "Mail", "bcc to alice": "Mail"}
    assert espomail("--as", "alice", "email", "list", "--json").json == []  # the inbox
    filed = espomail("--as", "alice", "email", "list", "--folder", "Mail", "--json").json
    assert sorted(e["subject"] for e in filed) == ["bcc to alice", "to alice"]


def test_folder_map_sends_each_imap_folder_to_a_folder_of_the_owner(espomail, dovecot, mailbox, alice):
    box, account = _personal(
        espomail, dovecot, mailbox, "--folder", "INBOX", "--folder", "Work", "--folder", "Lists",
        "--folder-map", "Work=Projects", "--folder-map", "Lists=Lists",
    )  # fmt: skip
    assert account["folder_map"] == {"Work": "Projects", "Lists": "Lists"}
    dovecot.append(box, build_message(to="alice@example.com", subject="in inbox"))
    dovecot.append(box, build_message(to="alice@example.com", subject="work item"), folder="Work")
    dovecot.append(box, build_message(to="list@lists.example", subject="newsletter"), folder="Lists")
    assert espomail("fetch").exit_code == 0
    assert _folders_of(espomail, "alice") == {"in inbox": None, "work item": "Projects", "newsletter": "Lists"}
    shown = espomail("account", "show", "alice-mail", "--json").json
    assert shown["folder_map"] == {"Work": "Projects", "Lists": "Lists"}


def test_folder_map_entries_are_checked_changed_and_removed(espomail, dovecot, mailbox, alice):
    _personal(espomail, dovecot, mailbox, "--folder", "INBOX", "--folder", "Work", "--folder-map", "inbox=Mail")

    def update(*args):
        return espomail("account", "update", "alice-mail", *args, "--json")

    assert update("--folder-map", "Work=Projects").json["folder_map"] == {"INBOX": "Mail", "Work": "Projects"}
    assert update("--folder-map", "INBOX=").json["folder_map"] == {"Work": "Projects"}
    unmonitored = espomail("account", "update", "alice-mail", "--folder-map", "Spam=Mail")
    assert (unmonitored.exit_code, unmonitored.stderr) == (
        2,
        "Error: --folder-map Spam=Mail: 'Spam' is not a monitored folder (INBOX, Work); add it with --folder\n",
    )
    missing = espomail("account", "update", "alice-mail", "--folder-map", "Work=Nope")
    assert missing.exit_code == 3 and "add it with 'espomail folder add Nope --user alice'" in missing.stderr
    assert espomail("account", "update", "alice-mail", "--folder-map", "Work").exit_code == 2
    assert update().json["folder_map"] == {"Work": "Projects"}  # the refused commands changed nothing
    # no longer monitoring Work drops its entry, and says so
    dropped = espomail("account", "update", "alice-mail", "--folder", "INBOX")
    assert dropped.exit_code == 0
    assert "Note: the --folder-map entry of 'Work' was dropped: that folder is no longer monitored" in dropped.stderr
    assert update().json["folder_map"] == {}


def test_folder_map_is_for_personal_accounts(espomail, alice):
    _account(espomail)
    group = espomail("account", "update", "support", "--folder-map", "INBOX=Mail")
    assert group.exit_code == 2
    assert group.stderr == "Error: --user, --personal-folder and --folder-map apply to personal accounts only\n"


def test_the_owners_own_filters_still_win_over_the_folder_map(espomail, dovecot, mailbox, alice):
    box, _ = _personal(espomail, dovecot, mailbox, "--personal-folder", "Mail")
    espomail("filter", "add", "projects", "--user", "alice", "--subject", "*project*", "--action", "move-to-folder",
             "--folder", "Projects")  # fmt: skip
    dovecot.append(box, [
        build_message(to="alice@example.com", subject="project x"),
        build_message(to="alice@example.com", subject="hello"),
    ])  # fmt: skip
    assert espomail("fetch").exit_code == 0
    assert _folders_of(espomail, "alice") == {"project x": "Projects", "hello": "Mail"}
