"""``espomail email import``: one file, an mbox, a Maildir, a directory; duplicates recognised."""

import datetime as dt
import mailbox

import pytest

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


# -- SPEC 11: imports send nothing and open no case unless asked; non-mail files are skipped --------


@pytest.fixture
def support(espomail, smtp, tmp_path):
    """A group account with cases and auto-replies; importing as it is the migration case."""
    body = tmp_path / "ack.txt"
    body.write_text("We opened case {case_number}.\n")
    result = espomail(
        "account",
        "add-group",
        "support",
        "--address",
        "support@example.com",
        "--host",
        "imap.example.com",
        "--username",
        "u",
        "--password-env",
        "X",
        "--create-case",
        "--auto-reply",
        "--reply-subject",
        "ack",
        "--reply-body-file",
        body,
        "--smtp-host",
        smtp.host,
        "--smtp-port",
        smtp.port,
        "--smtp-security",
        "none",
    )
    assert result.exit_code == 0, result
    return "support"


def archive(tmp_path, name, date, count=3):
    box = mailbox.mbox(str(tmp_path / name))
    for i in range(count):
        box.add(build_message(from_=f"c{i}@paypal.example", subject=f"receipt {i}", date=date))
    box.close()
    return tmp_path / name


OLD = dt.datetime(2002, 3, 4, 5, 6, tzinfo=dt.UTC)
NOW = dt.datetime.now(dt.UTC)


def test_old_archive_import_sends_nothing_and_opens_no_case(espomail, support, smtp, tmp_path):
    result = espomail("email", "import", archive(tmp_path, "2002.mbox", OLD), "--account", support, "--json")
    assert result.exit_code == 0, result
    assert (result.json["new"], result.json["cases_created"], result.json["auto_replies"]) == (3, 0, 0)
    assert smtp.messages == [] and espomail("case", "list", "--json").json == []
    email = espomail("email", "list", "--json").json[0]
    trail = {e["step"]: e for e in espomail("email", "explain", email["id"], "--json").json["events"]}
    assert trail["email-to-case"]["detail"] == "imported without --create-cases"
    assert trail["auto-reply"]["detail"] == "imported without --send-auto-replies"


def test_recent_mail_import_is_silent_too_unless_asked(espomail, support, smtp, tmp_path):
    quiet = espomail("email", "import", archive(tmp_path, "today.mbox", NOW), "--account", support, "--json").json
    assert (quiet["cases_created"], quiet["auto_replies"]) == (0, 0) and smtp.messages == []
    path = archive(tmp_path, "more.mbox", NOW, count=2)
    loud = espomail(
        "email", "import", path, "--account", support, "--create-cases", "--send-auto-replies", "--json"
    ).json
    assert (loud["new"], loud["cases_created"], loud["auto_replies"]) == (2, 2, 2)
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["c0@paypal.example", "c1@paypal.example"]


def test_old_mail_imported_with_the_flags_is_cased_but_not_answered(espomail, support, smtp, tmp_path):
    path = archive(tmp_path, "2002.mbox", OLD, count=2)
    result = espomail("email", "import", path, "--account", support, "--create-cases", "--send-auto-replies", "--json")
    assert (result.json["cases_created"], result.json["auto_replies"]) == (2, 0)
    assert smtp.messages == []


def test_a_failed_import_retried_later_keeps_its_silence(espomail, support, smtp, tmp_path, monkeypatch):
    from espomail.pipeline import registry

    def broken(ctx):
        raise RuntimeError("a step failed")

    with monkeypatch.context() as patch:
        patch.setitem(registry.STEPS, "thread", broken)
        result = espomail("email", "import", archive(tmp_path, "today.mbox", NOW, count=1), "--account", support)
        assert result.exit_code == 1
    assert espomail("email", "list", "--state", "failed", "--json").json
    retried = espomail("email", "reprocess", "--failed", "--json")
    assert retried.exit_code == 0 and retried.json["new"] == 1
    assert smtp.messages == [] and espomail("case", "list", "--json").json == []


def test_directory_import_skips_and_lists_files_that_are_not_mail(espomail, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "LICENSE").write_text("MIT License\n\nPermission is hereby granted...\n")
    (folder / "README.md").write_text("# Old mail export\n")
    (folder / "one.eml").write_bytes(build_message(subject="one"))
    (folder / "two.eml").write_bytes(build_message(subject="two"))
    result = espomail("email", "import", folder, "--json")
    assert result.exit_code == 0, result
    assert result.json["new"] == 2 and sorted(result.json["skipped"]) == ["LICENSE", "README.md"]
    assert sorted(e["subject"] for e in espomail("email", "list", "--json").json) == ["one", "two"]
    human = espomail("email", "import", folder)
    assert human.exit_code == 0
    [line] = [line for line in human.stderr.splitlines() if line.startswith("skipped")]
    assert line == "skipped 2 file(s) that do not look like mail: LICENSE, README.md"


def test_a_directory_of_no_mail_at_all_is_refused_with_the_names(espomail, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "LICENSE").write_text("MIT License\n")
    (folder / "setup.py").write_text("import setuptools\n")
    result = espomail("email", "import", folder)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {folder} holds no mail: skipped 2 file(s) that do not look like mail: LICENSE (")
    assert "setup.py (" in line
    assert espomail("email", "list", "--json").json == []
